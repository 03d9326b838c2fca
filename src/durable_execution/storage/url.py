"""Storage URLs: what ``open_storage`` accepts, parsed into one of three typed targets.

* ``memory://`` — the in-memory storage;
* ``sqlite:///relative/path.db`` and ``sqlite:////absolute/path.db`` — a SQLite file (three
  slashes, then the path; an absolute path therefore shows four);
* ``postgresql://user:password@host:port/database?…`` (also ``postgres://``) — any libpq URL.

A URL that does not parse raises ``ValueError`` saying what is wrong with it; the message shows
the URL with its password masked, because error messages end up in logs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias
from urllib.parse import parse_qsl, urlsplit, urlunsplit

MASK = "***"
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*):")
_EXPECTED = "expected memory://, sqlite:///path/to/file.db or postgresql://user@host/database"


@dataclass(frozen=True, slots=True)
class MemoryUrl:
    pass


@dataclass(frozen=True, slots=True)
class SqliteUrl:
    path: Path


@dataclass(frozen=True, slots=True)
class PostgresUrl:
    conninfo: str  # the URL as given, for libpq
    masked: str  # the same URL with its password replaced, for messages


StorageUrl: TypeAlias = MemoryUrl | SqliteUrl | PostgresUrl


def mask_password(url: str) -> str:
    """``url`` with the password of its user-info part and any ``password=`` parameter masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        # Not even splittable: mask anything between "://user:" and the last "@" by hand.
        return re.sub(r"(://[^:/@]*:)[^@]*@", rf"\g<1>{MASK}@", url)
    if _password_of(url) is None:
        return url  # nothing to hide: show the URL exactly as it was given
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostinfo = netloc.rpartition("@")
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{MASK}@{hostinfo}"
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", rf"\g<1>\g<2>{MASK}", parts.query)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _password_of(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        password = parts.password
        query_passwords = [v for k, v in parse_qsl(parts.query) if k.lower() == "password"]
    except ValueError:
        return None
    return password or (query_passwords[0] if query_passwords else None)


def scrub(text: str, url: str) -> str:
    """``text`` (say, a driver's error message) with ``url``'s password masked wherever it shows."""
    password = _password_of(url)
    if password:
        text = text.replace(password, MASK)
    return text.strip()


def parse_storage_url(url: str) -> StorageUrl:
    """Parse ``url`` or raise ``ValueError`` naming the problem (password masked)."""
    if not isinstance(url, str):
        raise ValueError(f"storage URL must be a string, got {type(url).__name__}")
    shown = mask_password(url)
    match = _SCHEME.match(url)
    if match is None:
        raise ValueError(f"malformed storage URL {shown!r}: no scheme; {_EXPECTED}")
    scheme = match.group("scheme").lower()
    rest = url[match.end() :]
    if scheme == "memory":
        if rest not in ("", "//"):
            raise ValueError(f"malformed storage URL {shown!r}: memory:// takes nothing after it")
        return MemoryUrl()
    if scheme == "sqlite":
        return SqliteUrl(_sqlite_path(rest, shown))
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
    if "?" in path or "#" in path:
        raise ValueError(
            f"malformed storage URL {shown!r}: SQLite URLs take no query or fragment; "
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


def _check_postgres(url: str, shown: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check: it raises on garbage
    except ValueError as error:
        raise ValueError(f"malformed storage URL {shown!r}: {scrub(str(error), url)}") from None
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
        raise ValueError(f"malformed storage URL {shown!r}: {scrub(str(error), url)}") from None
