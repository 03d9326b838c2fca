"""The migration runner: applies the generated schema migrations of one table, once each.

A run is one transaction that

1. takes a lock that serialises concurrent migrators of the same table (PostgreSQL: a
   transaction-scoped advisory lock keyed by the table name; SQLite: ``BEGIN IMMEDIATE``), so
   several processes starting at once apply each migration exactly once;
2. runs the bootstrap (version 0, idempotent: it creates the migrations table if needed);
3. reads the applied versions and refuses to touch a database whose schema is newer than this
   code knows;
4. applies every missing numbered migration in version order and records it.

The runner executes generated statements only (``generated/<dialect>/migrations.py``); the
bookkeeping queries are generated too. It imports no database driver itself: the storages hand it
their connection and generated objects, so SQLite users need not install psycopg.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from durable_execution.clock import now, to_epoch_ms
from durable_execution.storage import _sqlite_session
from durable_execution.storage.errors import SchemaTooNewError

if TYPE_CHECKING:
    import psycopg

    from durable_execution.generated import postgresql as pg
    from durable_execution.generated import sqlite as lite


class _Migration(Protocol):
    @property
    def version(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def statements(self) -> tuple[str, ...]: ...


_M = TypeVar("_M", bound=_Migration)


def latest_version(migrations: Sequence[_Migration]) -> int:
    return max(m.version for m in migrations)


def pending(migrations: Sequence[_M], applied: Iterable[int]) -> list[_M]:
    """The numbered migrations still to apply, in order; refuses a newer schema."""
    applied_set = set(applied)
    newest_known = latest_version(migrations)
    newest_applied = max(applied_set, default=0)
    if newest_applied > newest_known:
        raise SchemaTooNewError(newest_applied, newest_known)
    return sorted(
        (m for m in migrations if m.version != 0 and m.version not in applied_set),
        key=lambda m: m.version,
    )


def _bootstrap(migrations: Sequence[_M]) -> _M:
    for migration in migrations:
        if migration.version == 0:
            return migration
    raise AssertionError("the generated migrations have no bootstrap (version 0)")


def migration_lock_key(table: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``table`` (the same in every process)."""
    digest = hashlib.sha256(f"durable_execution.migrate:{table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def concurrency_lock_key(table: str) -> int:
    """The part of the claim's per-key advisory locks that ``table`` contributes (the query mixes
    in the schema and the key; see ``LockReadyConcurrencyKeys``)."""
    digest = hashlib.sha256(f"durable_execution.concurrency:{table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def pruning_lock_key(table: str) -> int:
    """The advisory-lock key automatic retention takes for ``table`` (not the migration one)."""
    digest = hashlib.sha256(f"durable_execution.prune:{table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def migrate_sqlite(
    conn: sqlite3.Connection,
    queries: lite.Queries,
    migrations: Sequence[lite.Migration],
    busy_timeout_ms: int,
) -> list[int]:
    """Apply pending migrations on an autocommit connection; returns the versions applied."""
    _sqlite_session.begin_immediate(conn, busy_timeout_ms)
    try:
        for statement in _bootstrap(migrations).statements:
            conn.execute(statement)
        applied = queries.get_applied_migration_versions(conn)
        applied_now: list[int] = []
        for migration in pending(migrations, applied):
            for statement in migration.statements:
                conn.execute(statement)
            queries.insert_applied_migration(
                conn, version=migration.version, name=migration.name, applied_at=to_epoch_ms(now())
            )
            applied_now.append(migration.version)
    except BaseException:
        _sqlite_session.rollback(conn)
        raise
    _sqlite_session.commit(conn, busy_timeout_ms)
    return applied_now


async def migrate_postgres(
    conn: psycopg.AsyncConnection[Any],  # Any: the row factory does not matter (tuple cursors)
    queries: pg.AsyncQueries,
    migrations: Sequence[pg.Migration],
) -> list[int]:
    """Apply pending migrations in one transaction on ``conn``; returns the versions applied."""
    async with conn.transaction():
        await queries.lock_migrations(conn, lock_key=migration_lock_key(queries.table))
        for statement in _bootstrap(migrations).statements:
            await conn.execute(statement)
        applied = await queries.get_applied_migration_versions(conn)
        applied_now: list[int] = []
        for migration in pending(migrations, applied):
            for statement in migration.statements:
                await conn.execute(statement)
            await queries.insert_applied_migration(
                conn, version=migration.version, name=migration.name, applied_at=now()
            )
            applied_now.append(migration.version)
    return applied_now
