"""The SQL tokenizer: literals, identifiers and comments hide what looks like SQL inside them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codegen.errors import CodegenError
from codegen.tokenizer import POSTGRESQL, SQLITE, Kind, Token, tokenize


def kinds(text: str, dialect: str) -> list[tuple[Kind, str]]:
    return [(t.kind, t.text) for t in tokenize(text, dialect) if t.kind is not Kind.SPACE]


def params(text: str, dialect: str) -> list[Token]:
    return [t for t in tokenize(text, dialect) if t.kind in (Kind.PARAM, Kind.SLICE)]


def test_postgresql_placeholders_outside_literals_only() -> None:
    text = (
        "SELECT '$1', E'\\'$2', $tag$ $3 $tag$, $$ $4 $$, \"$5\" -- $6\n"
        "/* $7 */ FROM t WHERE a = $8"
    )
    assert [t.number for t in params(text, POSTGRESQL)] == [8]


def test_postgresql_tokens() -> None:
    text = "SELECT 'it''s', E'a\\'b', $x$ ; $x$, \"Col\"\"x\" FROM t -- end"
    assert kinds(text, POSTGRESQL) == [
        (Kind.IDENT, "SELECT"),
        (Kind.STRING, "'it''s'"),
        (Kind.PUNCT, ","),
        (Kind.STRING, "E'a\\'b'"),
        (Kind.PUNCT, ","),
        (Kind.STRING, "$x$ ; $x$"),
        (Kind.PUNCT, ","),
        (Kind.QUOTED_IDENT, '"Col""x"'),
        (Kind.IDENT, "FROM"),
        (Kind.IDENT, "t"),
        (Kind.COMMENT, "-- end"),
    ]
    quoted = [t for t in tokenize(text, POSTGRESQL) if t.kind is Kind.QUOTED_IDENT]
    assert quoted[0].name == 'Col"x'


def test_dollar_quote_needs_its_own_tag_to_close() -> None:
    text = "$a$ $b$ ; $b$ $a$ ; x"
    tokens = kinds(text, POSTGRESQL)
    assert tokens[0] == (Kind.STRING, "$a$ $b$ ; $b$ $a$")
    assert tokens[1] == (Kind.PUNCT, ";")


def test_identifier_may_contain_dollar_without_being_a_parameter() -> None:
    assert kinds("a$1 + $1", POSTGRESQL) == [
        (Kind.IDENT, "a$1"),
        (Kind.PUNCT, "+"),
        (Kind.PARAM, "$1"),
    ]


def test_block_comments_nest_on_postgresql_only() -> None:
    text = "/* a /* b */ c */ x"
    assert kinds(text, POSTGRESQL) == [(Kind.COMMENT, "/* a /* b */ c */"), (Kind.IDENT, "x")]
    # SQLite ends the comment at the first */, leaving `c */ x` as code.
    assert kinds(text, SQLITE)[0] == (Kind.COMMENT, "/* a /* b */")


def test_sqlite_placeholders_and_slices() -> None:
    text = "a IN (/*SLICE:ids*/?) AND b = ?2 AND c = ? AND d = '?3' -- ?4\n AND e = [?5] AND `?6`"
    found = params(text, SQLITE)
    assert [(t.kind, t.number, t.name) for t in found] == [
        (Kind.SLICE, None, "ids"),
        (Kind.PARAM, 2, ""),
        (Kind.PARAM, None, ""),
    ]


def test_e_string_is_postgresql_only() -> None:
    # In SQLite a backslash is an ordinary character: 'a\' is a complete literal.
    assert kinds("E'a\\' x", SQLITE)[:2] == [(Kind.IDENT, "E"), (Kind.STRING, "'a\\'")]
    with pytest.raises(CodegenError, match="unterminated"):
        tokenize("E'a\\' x", POSTGRESQL)


@pytest.mark.parametrize("text", ["'abc", '"abc', "/* abc", "$q$ abc $x$", "/* /* */", "x = E'\\'"])
def test_unterminated_text_is_an_error(text: str) -> None:
    with pytest.raises(CodegenError, match="unterminated"):
        tokenize(text, POSTGRESQL)


def test_placeholder_text_in_identifiers_is_not_a_parameter() -> None:
    assert params('SELECT "$1", "?" FROM t', POSTGRESQL) == []
    assert params('SELECT "?1", [?], `?` FROM t', SQLITE) == []


_SQL_PIECES = ["a", "_", "1", " ", "\n", "'", "''", '"', "$", "$1", "$t$", "?", "?2", "-", "--"]
_SQL_PIECES += ["/*", "*/", "/*SLICE:x*/?", "E'", "\\", ";", "(", ")", "[", "]", "`", "{", "é"]
_SQL_ALPHABET = st.sampled_from(_SQL_PIECES)


@given(st.lists(_SQL_ALPHABET, max_size=30).map("".join), st.sampled_from([POSTGRESQL, SQLITE]))
def test_tokens_concatenate_back_to_the_input(text: str, dialect: str) -> None:
    try:
        tokens = tokenize(text, dialect)
    except CodegenError:
        return  # unterminated literal or comment: refused, which is fine
    assert "".join(t.text for t in tokens) == text
