"""``open_storage(url)``: one call from a URL to a ready storage, closed again on exit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TypeVar

from durable_execution.storage import sqlite
from durable_execution.storage._sqlite_session import SqliteSynchronous, check_synchronous
from durable_execution.storage.memory import InMemoryStorage
from durable_execution.storage.table_names import DEFAULT_TABLE, validate_table_name
from durable_execution.storage.types import DurableStorage
from durable_execution.storage.url import (
    MemoryUrl,
    PostgresUrl,
    SqliteUrl,
    parse_storage_url,
)

_T = TypeVar("_T")

_POSTGRES_EXTRA_HINT = (
    "PostgreSQL storage needs psycopg and psycopg-pool: pip install 'durable-execution[postgresql]'"
)


@asynccontextmanager
async def open_storage(
    url: str,
    *,
    migrate: bool = True,
    table_name: str = DEFAULT_TABLE,
    busy_timeout_ms: int | None = None,
    sqlite_synchronous: SqliteSynchronous | None = None,
    pool_min_size: int | None = None,
    pool_max_size: int | None = None,
    listen: bool | None = None,
) -> AsyncIterator[DurableStorage]:
    """Open the storage ``url`` names, apply pending migrations, and close it on exit.

    ``url`` is ``memory://``, ``sqlite:///relative.db``, ``sqlite:////absolute.db`` or a
    ``postgresql://`` (``postgres://``) URL. With ``migrate=True`` (the default) the schema is
    created or upgraded first; that is safe when several processes start at once, and refuses a
    database whose schema is newer than this code. ``table_name`` selects the executions table
    (a plain identifier; its indexes and migrations table are named after it).

    Backend options: ``busy_timeout_ms`` (SQLite: how long to wait for another process's write
    lock), ``sqlite_synchronous`` (SQLite: ``"full"``, the default, syncs every commit to disk;
    ``"normal"`` is faster, but a power loss or OS crash may drop the last commits — also
    ``?synchronous=normal`` in the URL), ``pool_min_size`` / ``pool_max_size`` (PostgreSQL
    connection pool), ``listen`` (PostgreSQL, default ``True``: ``False`` opens no LISTEN
    session, so executors find work other processes enqueue by polling only — for PgBouncer in
    transaction mode). Passing an option to a backend it does not apply to is an error, as is a
    malformed URL or an unknown scheme (``ValueError``, with any password in the URL masked).
    """
    if sqlite_synchronous is not None:
        check_synchronous(sqlite_synchronous, "sqlite_synchronous")
    target = parse_storage_url(url)
    validate_table_name(table_name)
    sqlite_options = {
        "busy_timeout_ms": busy_timeout_ms,
        "sqlite_synchronous": sqlite_synchronous,
    }
    postgres_options = {
        "pool_min_size": pool_min_size,
        "pool_max_size": pool_max_size,
        "listen": listen,
    }
    match target:
        case MemoryUrl():
            _refuse_options({**sqlite_options, **postgres_options}, "memory://")
            yield InMemoryStorage()
        case SqliteUrl(path=path, synchronous=url_synchronous):
            _refuse_options(postgres_options, "sqlite://")
            if url_synchronous is not None and sqlite_synchronous is not None:
                raise ValueError(
                    "synchronous is given twice, in the URL and as sqlite_synchronous; give it once"
                )
            sqlite_storage = sqlite.SQLiteDurableStorage(
                path,
                table_name=table_name,
                busy_timeout_ms=_or(busy_timeout_ms, sqlite.DEFAULT_BUSY_TIMEOUT_MS),
                synchronous=_or(url_synchronous or sqlite_synchronous, sqlite.DEFAULT_SYNCHRONOUS),
            )
            async with sqlite_storage:
                if migrate:
                    await sqlite_storage.migrate()  # verifies the schema too
                else:  # a table that is there must be whole; one that is not, untouched
                    await sqlite_storage.verify_schema(if_exists=True)
                yield sqlite_storage
        case PostgresUrl(conninfo=conninfo, masked=masked):
            _refuse_options(sqlite_options, "postgresql://")
            try:
                from durable_execution.storage import postgres
            except ImportError as error:
                raise ImportError(_POSTGRES_EXTRA_HINT) from error
            postgres_storage = postgres.PostgresDurableStorage(
                conninfo,
                table_name=table_name,
                pool_min_size=_or(pool_min_size, postgres.DEFAULT_POOL_MIN_SIZE),
                pool_max_size=_or(pool_max_size, postgres.DEFAULT_POOL_MAX_SIZE),
                display_url=masked,
                listen=_or(listen, True),
            )
            async with postgres_storage:
                if migrate:
                    await postgres_storage.migrate()
                yield postgres_storage


def _refuse_options(options: Mapping[str, object], backend: str) -> None:
    given = sorted(name for name, value in options.items() if value is not None)
    if given:
        raise ValueError(f"{', '.join(given)} does not apply to {backend} storage URLs")


def _or(value: _T | None, default: _T) -> _T:
    return default if value is None else value
