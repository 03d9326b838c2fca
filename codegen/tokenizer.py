"""A small SQL tokenizer for the PostgreSQL and SQLite texts that sqlc hands over.

It only needs to be exact about what can hide SQL: string literals (``'…'`` with ``''``;
PostgreSQL ``E'…'`` with backslash escapes and ``$tag$…$tag$`` dollar quotes), quoted
identifiers, and comments (``-- …``, ``/* … */``, nested on PostgreSQL). Everything outside
those is identifiers, numbers, placeholders and single-character punctuation. Concatenating
the token texts always gives back the input exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from codegen.errors import CodegenError


class Kind(Enum):
    SPACE = "space"
    COMMENT = "comment"
    STRING = "string"  # any literal: '…', E'…', $tag$…$tag$
    QUOTED_IDENT = "quoted_ident"  # "…" (and `…`, […] on SQLite)
    IDENT = "ident"
    NUMBER = "number"
    PARAM = "param"  # $N on PostgreSQL; ?, ?N on SQLite
    SLICE = "slice"  # sqlc's /*SLICE:name*/? marker
    PUNCT = "punct"  # one character of anything else


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str
    # PARAM: the number, or None for a bare `?`. SLICE: the slice name. QUOTED_IDENT: the
    # unquoted name. Otherwise unused.
    number: int | None = None
    name: str = ""


POSTGRESQL = "postgresql"
SQLITE = "sqlite"

_SPACE = re.compile(r"\s+")
_IDENT = re.compile(r"[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_$\x80-\U0010ffff]*")
_NUMBER = re.compile(r"[0-9][A-Za-z0-9_.]*")
_DIGITS = re.compile(r"[0-9]+")
_SLICE = re.compile(r"/\*SLICE:([A-Za-z0-9_]+)\*/\?")
# A dollar-quote tag: `$$` or `$tag$`, where tag is an identifier without `$`.
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*)?\$")


def tokenize(text: str, dialect: str) -> list[Token]:
    """Split ``text`` into tokens; raises CodegenError for an unterminated literal or comment."""
    if dialect not in (POSTGRESQL, SQLITE):
        raise ValueError(f"unknown dialect {dialect!r}")
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        token = _next_token(text, pos, dialect)
        tokens.append(token)
        pos += len(token.text)
    return tokens


def _next_token(text: str, pos: int, dialect: str) -> Token:
    char = text[pos]
    nxt = text[pos + 1] if pos + 1 < len(text) else ""
    if match := _SPACE.match(text, pos):
        return Token(Kind.SPACE, match.group())
    if char == "-" and nxt == "-":
        end = text.find("\n", pos)
        return Token(Kind.COMMENT, text[pos : len(text) if end < 0 else end])
    if char == "/" and nxt == "*":
        if match := _SLICE.match(text, pos):
            return Token(Kind.SLICE, match.group(), name=match.group(1))
        return Token(Kind.COMMENT, text[pos : _block_comment_end(text, pos, dialect)])
    if char == "'":
        return Token(Kind.STRING, text[pos : _quoted_end(text, pos, "'", backslash=False)])
    if char in "eE" and nxt == "'" and dialect == POSTGRESQL:
        return Token(Kind.STRING, text[pos : _quoted_end(text, pos + 1, "'", backslash=True)])
    if char == '"' or (dialect == SQLITE and char in "`["):
        close = "]" if char == "[" else char
        end = _quoted_end(text, pos, close, backslash=False)
        raw = text[pos:end]
        return Token(Kind.QUOTED_IDENT, raw, name=raw[1:-1].replace(close * 2, close))
    if char == "$" and dialect == POSTGRESQL:
        if match := _DIGITS.match(text, pos + 1):
            return Token(Kind.PARAM, "$" + match.group(), number=int(match.group()))
        if match := _DOLLAR_TAG.match(text, pos):
            tag = match.group()
            end = text.find(tag, match.end())
            if end < 0:
                raise CodegenError(f"unterminated dollar-quoted string {tag}…")
            return Token(Kind.STRING, text[pos : end + len(tag)])
    if char == "?" and dialect == SQLITE:
        match = _DIGITS.match(text, pos + 1)
        if match:
            return Token(Kind.PARAM, "?" + match.group(), number=int(match.group()))
        return Token(Kind.PARAM, "?")
    if match := _IDENT.match(text, pos):
        return Token(Kind.IDENT, match.group())
    if match := _NUMBER.match(text, pos):
        return Token(Kind.NUMBER, match.group())
    return Token(Kind.PUNCT, char)


def _quoted_end(text: str, pos: int, close: str, *, backslash: bool) -> int:
    """Index just past the literal opening at ``pos``; a doubled ``close`` is an escape."""
    i = pos + 1
    while i < len(text):
        char = text[i]
        if backslash and char == "\\":
            i += 2
            continue
        if char == close:
            if text.startswith(close, i + 1):
                i += 2
                continue
            return i + 1
        i += 1
    raise CodegenError(f"unterminated quoted text starting {text[pos : pos + 20]!r}")


def _block_comment_end(text: str, pos: int, dialect: str) -> int:
    """Index just past the ``/* … */`` at ``pos``; PostgreSQL nests them, SQLite does not."""
    depth = 0
    i = pos
    while i < len(text):
        if text.startswith("/*", i):
            if depth == 0 or dialect == POSTGRESQL:
                depth += 1
            i += 2
        elif text.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    raise CodegenError(f"unterminated comment starting {text[pos : pos + 20]!r}")
