"""Storage URLs: what ``open_storage`` accepts, parsed into one of three typed targets.

* ``memory://`` — the in-memory storage;
* ``sqlite:///relative/path.db`` and ``sqlite:////absolute/path.db`` — a SQLite file (three
  slashes, then the path; an absolute path therefore shows four); one query parameter is
  understood, ``?synchronous=full`` (the default) or ``?synchronous=normal`` (see
  :data:`~durable_execution.storage._sqlite_session.SqliteSynchronous`);
* ``postgresql://user:password@host:port/database?…`` (also ``postgres://``) — any libpq URL;
* ``host=… dbname=… user=… password=…`` — a libpq key/value connection string (PostgreSQL).

A URL that does not parse raises ``ValueError`` saying what is wrong with it; the message shows
the URL with its password masked (see :mod:`.masking`), because error messages end up in logs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias, TypedDict
from urllib.parse import parse_qsl, urlsplit

from durable_execution.storage._sqlite_session import SqliteSynchronous, check_synchronous
from durable_execution.storage.masking import MASK, mask_password, scrub
from durable_execution.storage.masking import masked as _masked

__all__ = [
    "MASK",
    "MemoryUrl",
    "PostgresUrl",
    "SqliteUrl",
    "StorageUrl",
    "mask_password",
    "parse_storage_url",
    "scrub",
]

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*):")
_EXPECTED = (
    "expected memory://, sqlite:///path/to/file.db, postgresql://user@host/database or a "
    "key/value string such as 'host=… dbname=…'"
)
# A libpq key/value connection string starts with a keyword and "=" (a URL with a scheme never
# does: "=" cannot be part of a scheme).
_KEYWORD_VALUE = re.compile(r"^\s*[A-Za-z_]+\s*=")
_URL_SPECIALS = "/#?@"


@dataclass(frozen=True, slots=True)
class MemoryUrl:
    pass


@dataclass(frozen=True, slots=True)
class SqliteUrl:
    path: Path
    synchronous: SqliteSynchronous | None = None  # None: not in the URL


@dataclass(frozen=True, slots=True)
class PostgresUrl:
    conninfo: str  # the URL or key/value string as given, for libpq
    masked: str  # the same with its password replaced, for messages


StorageUrl: TypeAlias = MemoryUrl | SqliteUrl | PostgresUrl


def parse_storage_url(url: str) -> StorageUrl:
    """Parse ``url`` or raise ``ValueError`` naming the problem (password masked)."""
    if not isinstance(url, str):
        raise ValueError(f"storage URL must be a string, got {type(url).__name__}")
    shown = mask_password(url)
    match = _SCHEME.match(url)
    if match is None and _KEYWORD_VALUE.match(url):
        _check_keyword_value(url, shown)
        return PostgresUrl(conninfo=url, masked=shown)
    if match is None:
        raise ValueError(f"malformed storage URL {shown!r}: no scheme; {_EXPECTED}")
    scheme = match.group("scheme").lower()
    rest = url[match.end() :]
    if scheme == "memory":
        if rest not in ("", "//"):
            raise ValueError(f"malformed storage URL {shown!r}: memory:// takes nothing after it")
        return MemoryUrl()
    if scheme == "sqlite":
        path, query = rest.partition("?")[::2]
        return SqliteUrl(_sqlite_path(path, shown), **_sqlite_parameters(query, shown))
    if scheme in ("postgresql", "postgres"):
        _check_postgres(url, shown)
        return PostgresUrl(conninfo=url, masked=shown)
    raise ValueError(f"unsupported storage URL scheme {scheme!r} in {shown!r}; {_EXPECTED}")


def _sqlite_path(rest: str, shown: str) -> Path:
    if not rest.startswith("///"):
        raise ValueError(
            f"malformed storage URL {shown!r}: a SQLite URL is sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db (no host)"
        )
    path = rest[3:]
    if "#" in path:
        raise ValueError(
            f"malformed storage URL {shown!r}: SQLite URLs take no fragment; "
            "pass options to open_storage() as keyword arguments"
        )
    if path in ("", "/") or path.endswith("/"):
        raise ValueError(f"malformed storage URL {shown!r}: no database file name")
    if path == ":memory:":
        raise ValueError(
            f"unsupported storage URL {shown!r}: an in-memory SQLite database lives and dies with "
            "one connection; use memory:// for an in-memory storage"
        )
    return Path(path)


class _SqliteParameters(TypedDict, total=False):
    synchronous: SqliteSynchronous


def _sqlite_parameters(query: str, shown: str) -> _SqliteParameters:
    """The SQLite URL's query: ``synchronous`` at most once; anything else is refused, so that a
    misspelt parameter cannot silently leave the default in force."""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ValueError(
            f"malformed storage URL {shown!r}: cannot parse the query {query!r}; "
            "expected ?synchronous=full or ?synchronous=normal"
        ) from None
    names = [name for name, _ in pairs]
    unknown = sorted({name for name in names if name != "synchronous"})
    if unknown:
        raise ValueError(
            f"malformed storage URL {shown!r}: unknown SQLite URL parameter(s) "
            f"{', '.join(map(repr, unknown))}; the only one is synchronous=full|normal"
        )
    if len(pairs) > 1:
        raise ValueError(f"malformed storage URL {shown!r}: synchronous is given more than once")
    if not pairs:
        return {}
    try:
        return {"synchronous": check_synchronous(pairs[0][1], "the synchronous URL parameter")}
    except ValueError as error:
        raise ValueError(f"malformed storage URL {shown!r}: {error}") from None


def _check_postgres(url: str, shown: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check: it raises on garbage
    except ValueError as error:
        raise ValueError(
            f"malformed storage URL {shown!r}: {scrub(str(error), url)}"
            f"{_special_password_hint(url)}"
        ) from None
    if not url[len(parts.scheme) + 1 :].startswith("//"):
        raise ValueError(
            f"malformed storage URL {shown!r}: expected {parts.scheme}://[user[:password]@]"
            "host[:port]/database"
        )
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:  # psycopg is an optional extra; open_storage reports it when needed
        return
    try:
        conninfo_to_dict(url)
    except Exception as error:  # psycopg.ProgrammingError; any libpq parse failure counts
        raise ValueError(
            f"malformed storage URL {shown!r}: {scrub(str(error), url)}"
            f"{_special_password_hint(url)}"
        ) from None


def _check_keyword_value(conninfo: str, shown: str) -> None:
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:  # psycopg is an optional extra; open_storage reports it when needed
        return
    try:
        conninfo_to_dict(conninfo)
    except Exception as error:  # psycopg.ProgrammingError; any libpq parse failure counts
        raise ValueError(
            f"malformed connection string {shown!r}: {scrub(str(error), conninfo)}; quote values "
            "with spaces: password='a b'"
        ) from None


def _special_password_hint(url: str) -> str:
    """A hint when the URL's password holds characters that a URL must percent-encode."""
    _, secrets = _masked(url)
    if any(char in secret for secret in secrets for char in _URL_SPECIALS):
        return " (percent-encode / # ? @ in a password: %2F %23 %3F %40)"
    return ""
