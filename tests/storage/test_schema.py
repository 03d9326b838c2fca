"""Schema introspection and the migration runner, on real SQLite files and real PostgreSQL.

* the indexes the queries need exist, named after the table, for the default and a custom table;
* migrating is idempotent, safe when several migrators start at once, and refuses a database
  whose schema is newer than the code.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import psycopg
import pytest
import sqlite_utils
from psycopg import sql

from durable_execution.generated import sqlite as lite
from durable_execution.generated.sqlite._table import TABLE_NAME_MAX_LENGTH
from durable_execution.storage import (
    PostgresDurableStorage,
    SchemaTooNewError,
    SQLiteDurableStorage,
    open_storage,
)

from ._records import ids, insert, record

DEFAULT = "durable_task_executions"
CUSTOM = "custom_task_runs"
LONGEST = "t" * TABLE_NAME_MAX_LENGTH  # every derived name must still fit, untruncated
LATEST = max(m.version for m in lite.MIGRATIONS)
# Every numbered migration (version 0, the bootstrap, is run but never recorded).
APPLIED = [m.version for m in lite.MIGRATIONS if m.version > 0]


def expected_indexes(table: str, dialect: str) -> dict[str, tuple[bool, list[str]]]:
    """index name -> (unique, columns): what every query of queries/ relies on."""
    return {
        f"ix_{table}_ready_concurrency": READY_CONCURRENCY[dialect],
        f"ix_{table}_execution_id": (True, ["execution_id"]),
        f"ix_{table}_status_is_closed_expires_at": (False, ["status", "is_closed", "expires_at"]),
        f"ix_{table}_status_start_at_id": (False, ["status", "start_at", "id"]),
        f"ix_{table}_parent_execution_id": (False, ["parent_execution_id"]),
        f"ix_{table}_top_level_finished_at": (False, ["finished_at", "id"]),
        f"ix_{table}_root_execution_id": (False, ["root_execution_id"]),
        f"ix_{table}_ready_unlimited": (False, ["status", "priority", "start_at", "id"]),
        f"ix_{table}_running_concurrency": (False, ["status", "task_id", "concurrency_key"]),
        f"ix_{table}_task_id_idempotency_key": (True, ["task_id", "idempotency_key"]),
    }


# The claim reads waiting executions under a limit per key on PostgreSQL, all at once on SQLite.
READY_CONCURRENCY = {
    "postgresql": (
        False,
        ["task_id", "concurrency_key", "priority", "start_at", "id", "concurrency_limit", "queue"],
    ),
    "sqlite": (False, ["status", "priority", "start_at", "id"]),
}


# --- indexes ----------------------------------------------------------------------------------


def sqlite_indexes(path: Path, table: str) -> dict[str, tuple[bool, list[str]]]:
    db = sqlite_utils.Database(path)
    try:
        return {
            index.name: (bool(index.unique), list(index.columns))
            for index in db.table(table).indexes
            if index.origin == "c"  # created by CREATE INDEX (not a PRIMARY KEY/UNIQUE clause)
        }
    finally:
        db.close()


@pytest.mark.parametrize("custom_table", [CUSTOM, LONGEST])
async def test_sqlite_schema_has_the_expected_indexes_for_any_table_name(
    sqlite_path: Path, custom_table: str
) -> None:
    url = f"sqlite:///{sqlite_path}"
    async with open_storage(url), open_storage(url, table_name=custom_table) as custom:
        await insert(custom, record("te_custom"))
    db = sqlite_utils.Database(sqlite_path)
    try:
        tables = {
            *(DEFAULT, f"{DEFAULT}_migrations", f"{DEFAULT}_schedules"),
            *(custom_table, f"{custom_table}_migrations", f"{custom_table}_schedules"),
        }
        assert set(db.table_names()) == tables
        assert db.journal_mode == "wal"
        assert db.table(custom_table).count == 1
        assert db.table(DEFAULT).count == 0
        assert db.table(custom_table).pks == ["id"]
    finally:
        db.close()
    assert sqlite_indexes(sqlite_path, DEFAULT) == expected_indexes(DEFAULT, "sqlite")
    assert sqlite_indexes(sqlite_path, custom_table) == expected_indexes(custom_table, "sqlite")


def postgres_indexes(url: str, table: str) -> dict[str, tuple[bool, list[str]]]:
    query = sql.SQL(
        """
        SELECT i.relname, x.indisunique,
               array_agg(a.attname ORDER BY k.ord)::text[]
        FROM pg_index x
        JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
        WHERE t.relname = {} AND n.nspname = current_schema() AND NOT x.indisprimary
        GROUP BY i.relname, x.indisunique
        """
    ).format(sql.Literal(table))
    with psycopg.connect(url) as conn:
        rows = conn.execute(query).fetchall()
    return {name: (unique, list(columns)) for name, unique, columns in rows}


@pytest.mark.parametrize("custom_table", [CUSTOM, LONGEST])
async def test_postgres_schema_has_the_expected_indexes_for_any_table_name(
    postgres_url: str, custom_table: str
) -> None:
    async with (
        open_storage(postgres_url),
        open_storage(postgres_url, table_name=custom_table) as custom,
    ):
        await insert(custom, record("te_custom"))
        assert await ids(custom, ["te_custom"]) == ["te_custom"]
    assert postgres_indexes(postgres_url, DEFAULT) == expected_indexes(DEFAULT, "postgresql")
    assert postgres_indexes(postgres_url, custom_table) == expected_indexes(
        custom_table, "postgresql"
    )
    count_default = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(DEFAULT))
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute(count_default).fetchone() == (0,)  # the row went to its own table


# --- migrations -------------------------------------------------------------------------------


def sqlite_recorded_versions(path: Path, table: str = DEFAULT) -> list[int]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(f"SELECT version FROM {table}_migrations ORDER BY version").fetchall()
    conn.close()
    return [version for (version,) in rows]


def postgres_recorded_versions(url: str, table: str = DEFAULT) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            sql.SQL("SELECT version FROM {} ORDER BY version").format(
                sql.Identifier(f"{table}_migrations")
            )
        ).fetchall()
    return [version for (version,) in rows]


async def test_sqlite_migrate_is_idempotent(sqlite_path: Path) -> None:
    async with SQLiteDurableStorage(sqlite_path) as storage:
        assert await storage.migrate() == APPLIED
        await insert(storage, record("te_kept"))
        assert await storage.migrate() == []
        assert await storage.migrate() == []
    async with open_storage(f"sqlite:///{sqlite_path}") as reopened:
        assert await ids(reopened, ["te_kept"]) == ["te_kept"]
    assert sqlite_recorded_versions(sqlite_path) == APPLIED


async def test_postgres_migrate_is_idempotent(postgres_url: str) -> None:
    async with PostgresDurableStorage(postgres_url) as storage:
        assert await storage.migrate() == APPLIED
        await insert(storage, record("te_kept"))
        assert await storage.migrate() == []
    async with open_storage(postgres_url) as reopened:
        assert await ids(reopened, ["te_kept"]) == ["te_kept"]
    assert postgres_recorded_versions(postgres_url) == APPLIED


async def test_open_storage_without_migrate_leaves_the_database_alone(sqlite_path: Path) -> None:
    async with open_storage(f"sqlite:///{sqlite_path}", migrate=False):
        pass
    db = sqlite_utils.Database(sqlite_path)
    try:
        assert db.table_names() == []
    finally:
        db.close()


async def test_concurrent_sqlite_migrators_apply_each_migration_once(sqlite_path: Path) -> None:
    # Separate storages have separate connections and threads: real lock contention on the file.
    storages = [SQLiteDurableStorage(sqlite_path) for _ in range(6)]
    try:
        results = await asyncio.gather(*(s.migrate() for s in storages))
    finally:
        for storage in storages:
            await storage.close()
    assert sorted(results) == [[]] * 5 + [APPLIED]
    assert sqlite_recorded_versions(sqlite_path) == APPLIED


async def test_concurrent_postgres_migrators_apply_each_migration_once(postgres_url: str) -> None:
    storages = [PostgresDurableStorage(postgres_url, pool_min_size=1) for _ in range(6)]
    for storage in storages:
        await storage.open()
    try:
        results = await asyncio.gather(*(s.migrate() for s in storages))
    finally:
        for storage in storages:
            await storage.close()
    assert sorted(results) == [[]] * 5 + [APPLIED]
    assert postgres_recorded_versions(postgres_url) == APPLIED


NEWER = LATEST + 41
REFUSAL = (
    f"schema version {NEWER} is newer than this code supports \\({LATEST}\\); "
    "upgrade durable-execution"
)


async def test_sqlite_refuses_a_newer_schema(sqlite_path: Path) -> None:
    async with open_storage(f"sqlite:///{sqlite_path}"):
        pass
    with sqlite3.connect(sqlite_path) as conn:
        conn.execute(
            f"INSERT INTO {DEFAULT}_migrations (version, name, applied_at) VALUES (?, 'future', 0)",
            (NEWER,),
        )
    conn.close()
    with pytest.raises(SchemaTooNewError, match=REFUSAL) as raised:
        async with open_storage(f"sqlite:///{sqlite_path}"):
            pass
    assert (raised.value.database_version, raised.value.code_version) == (NEWER, LATEST)
    assert sqlite_recorded_versions(sqlite_path) == [*APPLIED, NEWER]  # nothing changed


async def test_postgres_refuses_a_newer_schema(postgres_url: str) -> None:
    async with open_storage(postgres_url):
        pass
    with psycopg.connect(postgres_url) as conn:
        insert_version = sql.SQL("INSERT INTO {} VALUES (%s, 'future', now())")
        conn.execute(insert_version.format(sql.Identifier(f"{DEFAULT}_migrations")), (NEWER,))
    with pytest.raises(SchemaTooNewError, match=REFUSAL):
        async with open_storage(postgres_url):
            pass
    assert postgres_recorded_versions(postgres_url) == [*APPLIED, NEWER]
