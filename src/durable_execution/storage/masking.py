"""Masking the password of a connection string, whatever its form and however malformed.

Database URLs and libpq key/value strings end up in error messages, ``repr``\\ s and log lines;
their passwords must not. The masking is textual and never depends on the string parsing:

* a URL's user-info password runs from the first ``:`` after ``scheme://user`` to the *last*
  ``@``. A password holding an unencoded ``/``, ``#``, ``?`` or ``@`` is read differently by
  Python's URL parser and by libpq; this span covers every reading;
* a ``password=`` (or ``sslpassword=``) URL query parameter runs to the next ``&name=``;
* a key/value ``password=`` is a quoted value (``'a b'``, backslash escapes; unterminated, it runs
  to the end) or an unquoted one that runs to where the next ``name=`` starts (libpq stops at the
  first space, and then quotes the rest of what was meant as the password in its error).

Where unsure, more is hidden, never less. :func:`scrub` also hides the pieces a parser may quote
when it chokes on a malformed password.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote

MASK: Final = "***"

_URL_START = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_URL_USERINFO = re.compile(
    r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*:/*[^:/@?#\s]*:)(?P<password>.*)@(?P<tail>[^@]*)$",
    re.DOTALL,
)
_QUERY_PASSWORD = re.compile(
    r"(?i)(?P<key>[?&](?:ssl)?password=)(?P<password>[^&]*(?:&(?![A-Za-z_]+=)[^&]*)*)"
)
_KEYWORD_PASSWORD = re.compile(
    r"(?i)(?P<key>(?:^|(?<=\s))(?:ssl)?password\s*=\s*)"
    r"(?P<password>'(?:[^'\\]|\\.)*(?:'|\\?$)|\S*(?:\s+(?![A-Za-z_]+\s*=)\S+)*)"
)
_PIECE_SEPARATORS = re.compile(r"[/#?@&:=\s'\"\\]+")
_QUOTED = re.compile(r"(?P<quote>[\"'])(?P<inner>[^\"']*)(?P=quote)")
_MIN_PIECE: Final = 4  # shorter pieces are hidden only where a message quotes them


def masked(conninfo: str) -> tuple[str, list[str]]:
    """``conninfo`` with its passwords masked, and those passwords (as written, decoded)."""
    secrets: list[str] = []

    def keep(password: str) -> None:
        secrets.append(password)
        secrets.append(unquote(password))
        if password.startswith("'"):  # a quoted key/value password: its unquoted text too
            secrets.append(password.strip("'").replace("\\'", "'").replace("\\\\", "\\"))

    def hide(match: re.Match[str]) -> str:
        password = match.group("password")
        if not password:
            return match.group(0)
        keep(password)
        return f"{match.group('key')}{MASK}"

    if _URL_START.match(conninfo):
        shown = conninfo
        userinfo = _URL_USERINFO.match(conninfo)
        if userinfo is not None and userinfo.group("password"):
            keep(userinfo.group("password"))
            shown = f"{userinfo.group('head')}{MASK}@{userinfo.group('tail')}"
        shown = _QUERY_PASSWORD.sub(hide, shown)
    else:
        shown = _KEYWORD_PASSWORD.sub(hide, conninfo)
    return shown, sorted({s for s in secrets if s and s != MASK}, key=len, reverse=True)


def mask_password(conninfo: str) -> str:
    """``conninfo`` (a URL or a key/value connection string) with every password masked."""
    return masked(conninfo)[0]


def scrub(text: str, conninfo: str) -> str:
    """``text`` (say, a driver's error message) with ``conninfo``'s password masked wherever it
    shows, also in part."""
    _, secrets = masked(conninfo)
    for secret in secrets:
        text = text.replace(secret, MASK)
    pieces = {piece for secret in secrets for piece in _PIECE_SEPARATORS.split(secret) if piece}
    for piece in sorted(pieces, key=len, reverse=True):
        if len(piece) >= _MIN_PIECE:
            text = text.replace(piece, MASK)

    def quoted(match: re.Match[str]) -> str:
        inner = match.group("inner")
        if inner in pieces or any(piece in inner for piece in pieces if len(piece) >= 2):
            return f"{match.group('quote')}{MASK}{match.group('quote')}"
        return match.group(0)

    return _QUOTED.sub(quoted, text).strip()
