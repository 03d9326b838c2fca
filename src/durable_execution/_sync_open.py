"""Opening a ``SyncClient``'s storage: the URL, the schema, then the synchronous connections.

The schema is handled exactly as :func:`~durable_execution.storage.open_storage` handles it,
by running it once: with ``migrate=True`` the schema is created or upgraded (safe while workers
run: migrations take the same lock as theirs, and a database newer than this code is refused);
with ``migrate=False`` SQLite's table is verified if it exists, and nothing is touched on
PostgreSQL. Running ``open_storage`` also validates every option the way it does (an option for
another backend, ``synchronous`` given twice, a bad pool size) and reports an unreachable server
or an unwritable file with its clear errors. It runs on a helper thread with an event loop of
its own, so it works whether or not the caller's thread runs a loop; only then are the
synchronous connections opened.

``memory://`` is refused: the in-memory storage lives inside one process's executor, and a
client holding its own copy would enqueue work that no executor ever sees.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from durable_execution.storage import sqlite
from durable_execution.storage._sqlite_session import DEFAULT_SYNCHRONOUS, SqliteSynchronous
from durable_execution.storage.open import open_storage
from durable_execution.storage.sync_sqlite import SyncSQLiteStorage
from durable_execution.storage.sync_types import SyncStorage
from durable_execution.storage.url import MemoryUrl, PostgresUrl, SqliteUrl, parse_storage_url

MEMORY_REFUSED = (
    "SyncClient cannot use memory://: an in-memory storage exists only inside the process (and "
    "event loop) of the executor that holds it, so nothing a SyncClient enqueued there would "
    "ever run. Use the sqlite:/// file or postgresql:// database your executors use"
)
_POSTGRES_EXTRA_HINT = (
    "PostgreSQL storage needs psycopg and psycopg-pool: pip install 'durable-execution[postgresql]'"
)


def open_sync_storage(
    url: str,
    *,
    table_name: str,
    migrate: bool,
    busy_timeout_ms: int | None,
    sqlite_synchronous: SqliteSynchronous | None,
    pool_min_size: int | None,
    pool_max_size: int | None,
) -> SyncStorage:
    """The synchronous storage ``url`` names, its schema migrated (or checked) first."""
    target = parse_storage_url(url)
    if isinstance(target, MemoryUrl):
        raise ValueError(MEMORY_REFUSED)
    if isinstance(target, PostgresUrl):
        try:
            from durable_execution.storage import sync_postgres
        except ImportError as error:
            raise ImportError(_POSTGRES_EXTRA_HINT) from error
        # The schema pass needs one connection, not the client's pool.
        pool_min = sync_postgres.DEFAULT_POOL_MIN_SIZE if pool_min_size is None else pool_min_size
        pool_max = sync_postgres.DEFAULT_POOL_MAX_SIZE if pool_max_size is None else pool_max_size
        _prepare_schema(
            url,
            table_name=table_name,
            migrate=migrate,
            busy_timeout_ms=busy_timeout_ms,  # refused there, as on open_storage
            sqlite_synchronous=sqlite_synchronous,
            pool_min_size=min(pool_min, 1),
            pool_max_size=pool_max,
            listen=False,
        )
        postgres_storage = sync_postgres.SyncPostgresStorage(
            target.conninfo,
            table_name=table_name,
            pool_min_size=pool_min,
            pool_max_size=pool_max,
        )
        try:
            postgres_storage.open()
        except BaseException:
            postgres_storage.close()
            raise
        return postgres_storage
    assert isinstance(target, SqliteUrl)
    _prepare_schema(
        url,
        table_name=table_name,
        migrate=migrate,
        busy_timeout_ms=busy_timeout_ms,
        sqlite_synchronous=sqlite_synchronous,
        pool_min_size=pool_min_size,  # refused there, as on open_storage
        pool_max_size=pool_max_size,
    )
    return SyncSQLiteStorage(
        target.path,
        table_name=table_name,
        busy_timeout_ms=sqlite.DEFAULT_BUSY_TIMEOUT_MS
        if busy_timeout_ms is None
        else busy_timeout_ms,
        synchronous=target.synchronous or sqlite_synchronous or DEFAULT_SYNCHRONOUS,
    )


def _prepare_schema(
    url: str,
    *,
    table_name: str,
    migrate: bool,
    busy_timeout_ms: int | None,
    sqlite_synchronous: SqliteSynchronous | None,
    pool_min_size: int | None,
    pool_max_size: int | None,
    listen: bool | None = None,
) -> None:
    """Open (and so migrate or verify) the storage once with ``open_storage``, then close it."""

    async def open_and_close() -> None:
        async with open_storage(
            url,
            migrate=migrate,
            table_name=table_name,
            busy_timeout_ms=busy_timeout_ms,
            sqlite_synchronous=sqlite_synchronous,
            pool_min_size=pool_min_size,
            pool_max_size=pool_max_size,
            listen=listen,
        ):
            pass

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="durable-execution-open") as pool:
        pool.submit(lambda: asyncio.run(open_and_close())).result()
