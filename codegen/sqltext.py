"""Rewrites of SQL texts, all done on tokens so that literals and comments stay untouched.

* Table templating: identifiers derived from the configured table name become ``{table}``
  placeholders for ``str.format`` (every other brace is doubled).
* SQLite placeholders: ``?N``, ``?`` and ``/*SLICE:x*/?`` become named ``:pN`` placeholders,
  with slices left as holes that the generated code fills at run time.
* Statement splitting for migration files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from codegen.errors import CodegenError
from codegen.tokenizer import SQLITE, Kind, Token


def _escape_braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _template_name(name: str, table: str, *, fold_case: bool) -> str | None:
    """``name`` with each ``_``-delimited occurrence of ``table`` replaced by ``{table}``.

    ``durable_task_executions`` → ``{table}``, ``durable_task_executions_migrations`` →
    ``{table}_migrations``, ``ix_durable_task_executions_status`` → ``ix_{table}_status``.
    Returns None when the name does not contain the table name as such a component.
    """
    haystack = name.lower() if fold_case else name
    needle = table.lower() if fold_case else table
    pieces: list[str] = []
    start = 0
    found = False
    pos = haystack.find(needle)
    while pos >= 0:
        end = pos + len(needle)
        before_ok = pos == 0 or haystack[pos - 1] == "_"
        after_ok = end == len(haystack) or haystack[end] == "_"
        if before_ok and after_ok:
            pieces.append(_escape_braces(name[start:pos]))
            pieces.append("{table}")
            start = end
            found = True
            pos = haystack.find(needle, end)
        else:
            pos = haystack.find(needle, pos + 1)
    if not found:
        return None
    pieces.append(_escape_braces(name[start:]))
    return "".join(pieces)


def template_token(token: Token, table: str) -> str:
    """The token's text as a ``str.format`` template (see the module docstring)."""
    if token.kind is Kind.IDENT:
        # Unquoted identifiers are case-insensitive in both dialects.
        templated = _template_name(token.text, table, fold_case=True)
        if templated is not None:
            return templated
    elif token.kind is Kind.QUOTED_IDENT:
        templated = _template_name(token.name, table, fold_case=False)
        if templated is not None and token.name == token.text[1:-1]:
            return token.text[0] + templated + token.text[-1]
    return _escape_braces(token.text)


def template_sql(tokens: Iterable[Token], table: str) -> str:
    return "".join(template_token(token, table) for token in tokens)


def table_identifiers(tokens: Iterable[Token], table: str) -> frozenset[str]:
    """The identifiers derived from the table name, as templates (``ix_{table}_status``).

    These are the names whose length grows with the configured table name: the table name
    limit is computed from them (see ``codegen/table_name.py``). Quoted identifiers count
    without their quotes, because the limit applies to the name itself.
    """
    found: set[str] = set()
    for token in tokens:
        if token.kind is Kind.IDENT:
            templated = _template_name(token.text, table, fold_case=True)
        elif token.kind is Kind.QUOTED_IDENT:
            templated = _template_name(token.name, table, fold_case=False)
        else:
            continue
        if templated is not None:
            found.add(templated)
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class SliceHole:
    """Where a ``sqlc.slice`` list goes: bound as ``:p<number>_0, :p<number>_1, …``."""

    number: int
    name: str


@dataclass(frozen=True, slots=True)
class SqliteText:
    """A templated SQLite text split around its slice holes: len(parts) == len(holes) + 1."""

    parts: tuple[str, ...]
    holes: tuple[SliceHole, ...]
    numbers: frozenset[int]  # every parameter number the text binds (slices included)


def rewrite_sqlite(
    tokens: Sequence[Token],
    table: str,
    slice_numbers: Mapping[str, int],
) -> SqliteText:
    """Rewrite sqlc's SQLite placeholders to named form and template the table name.

    ``?N`` becomes ``:pN``. A bare ``?`` takes SQLite's own number: one more than the largest
    number seen so far. Slice markers are NOT counted in that rule: sqlc numbers slices after
    all other parameters (and gives them by name), which is exactly the ``?N`` renumbering
    pitfall of a naive ``?, ?, ?`` expansion (sqlc issue #2452).
    """
    parts: list[str] = []
    holes: list[SliceHole] = []
    current: list[str] = []
    numbers: set[int] = set()
    largest = 0
    for token in tokens:
        if token.kind is Kind.SLICE:
            number = slice_numbers.get(token.name)
            if number is None:
                raise CodegenError(f"slice marker {token.text} has no matching slice parameter")
            numbers.add(number)
            parts.append("".join(current))
            current = []
            holes.append(SliceHole(number=number, name=token.name))
        elif token.kind is Kind.PARAM:
            number = token.number if token.number is not None else largest + 1
            largest = max(largest, number)
            numbers.add(number)
            current.append(f":p{number}")
        else:
            current.append(template_token(token, table))
    parts.append("".join(current))
    return SqliteText(parts=tuple(parts), holes=tuple(holes), numbers=frozenset(numbers))


def postgresql_numbers(tokens: Iterable[Token]) -> frozenset[int]:
    """The ``$N`` numbers a PostgreSQL text uses (the text itself is kept as it is)."""
    return frozenset(t.number for t in tokens if t.kind is Kind.PARAM and t.number is not None)


def split_statements(tokens: Sequence[Token], table: str, dialect: str) -> list[str]:
    """Split a schema file into templated statements, comments removed, whitespace tidied.

    Statements end at a top-level ``;``. Inside parentheses, and inside the ``BEGIN … END``
    body of an SQLite ``CREATE TRIGGER``, a ``;`` belongs to the enclosing statement.
    """
    statements: list[str] = []
    current: list[Token] = []
    depth = 0  # parentheses, plus trigger BEGIN/CASE … END blocks
    for token in tokens:
        if token.kind is Kind.PUNCT and token.text == ";" and depth == 0:
            _finish(current, statements, table)
            current = []
            continue
        current.append(token)
        if token.kind is Kind.PUNCT and token.text in "()":
            depth += 1 if token.text == "(" else -1
        elif token.kind is Kind.IDENT and dialect == SQLITE and _is_trigger(current):
            word = token.text.upper()
            if word in ("BEGIN", "CASE"):
                depth += 1
            elif word == "END":
                depth -= 1
    _finish(current, statements, table)
    return statements


def _is_trigger(tokens: Sequence[Token]) -> bool:
    words = [t.text.upper() for t in tokens if t.kind is Kind.IDENT][:3]
    return words[:2] == ["CREATE", "TRIGGER"] or (
        words[:1] == ["CREATE"]
        and words[1:2] in (["TEMP"], ["TEMPORARY"])
        and words[2:] == ["TRIGGER"]
    )


def _finish(tokens: list[Token], statements: list[str], table: str) -> None:
    """Append the statement made of ``tokens`` unless it is only space and comments."""
    pieces: list[str] = []
    space = ""  # pending whitespace, merged across dropped comments
    for token in tokens:
        if token.kind in (Kind.SPACE, Kind.COMMENT):
            space += token.text if token.kind is Kind.SPACE else " "
            continue
        if pieces and space:
            # Keep line structure (newline + the next line's indentation); else one space.
            pieces.append("\n" + space.rsplit("\n", 1)[1] if "\n" in space else " ")
        space = ""
        pieces.append(template_token(token, table))
    if pieces:
        statements.append("".join(pieces))
