"""On open, a SQLite table is checked against what its migrations create (through sqlite-utils).

A column or index dropped or changed by hand is refused with an error that names it, whether
the storage migrates on open or not; a table that is whole, or has extra indexes of the user's,
opens; a database without the table is still left alone when migrate=False.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from durable_execution.storage import (
    SQLiteDurableStorage,
    StorageError,
    open_storage,
)

from ._records import ids, insert, record

TABLE = "durable_task_executions"
KEPT = ["te_kept"]


async def _migrated(path: Path, table: str = TABLE) -> None:
    async with SQLiteDurableStorage(path, table_name=table) as storage:
        await storage.migrate()
        await insert(storage, record("te_kept"))


def _alter(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    try:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


@pytest.mark.parametrize("migrate", [True, False])
async def test_a_dropped_index_is_named(sqlite_path: Path, migrate: bool) -> None:
    await _migrated(sqlite_path)
    _alter(sqlite_path, f"DROP INDEX ix_{TABLE}_status_start_at_id")
    pattern = rf"index ix_{TABLE}_status_start_at_id \(status, start_at, id\) is missing"
    with pytest.raises(StorageError, match=pattern):
        async with open_storage(f"sqlite:///{sqlite_path}", migrate=migrate):
            pass


async def test_a_changed_index_is_named(sqlite_path: Path) -> None:
    await _migrated(sqlite_path)
    _alter(
        sqlite_path,
        f"DROP INDEX ix_{TABLE}_execution_id",
        f"CREATE INDEX ix_{TABLE}_execution_id ON {TABLE} (execution_id)",  # no longer UNIQUE
    )
    with pytest.raises(StorageError, match=rf"index ix_{TABLE}_execution_id is \(execution_id\)"):
        async with open_storage(f"sqlite:///{sqlite_path}"):
            pass


async def test_a_dropped_column_is_named(sqlite_path: Path) -> None:
    await _migrated(sqlite_path)
    _alter(sqlite_path, f"ALTER TABLE {TABLE} DROP COLUMN lease_expiries")
    with pytest.raises(
        StorageError, match=r"column lease_expiries \(INTEGER NOT NULL\) is missing"
    ):
        async with open_storage(f"sqlite:///{sqlite_path}"):
            pass


async def test_every_difference_is_listed_and_nothing_stored_is_lost(sqlite_path: Path) -> None:
    await _migrated(sqlite_path)
    _alter(
        sqlite_path,
        f"DROP INDEX ix_{TABLE}_root_execution_id",
        f"DROP INDEX ix_{TABLE}_parent_execution_id",
    )
    storage = SQLiteDurableStorage(sqlite_path)
    async with storage:
        with pytest.raises(StorageError) as raised:
            await storage.verify_schema()
    message = str(raised.value)
    assert f"ix_{TABLE}_root_execution_id" in message
    assert f"ix_{TABLE}_parent_execution_id" in message
    assert "migrate=True" in message
    _alter(sqlite_path, f"CREATE INDEX ix_{TABLE}_root_execution_id ON {TABLE} (root_execution_id)")
    _alter(
        sqlite_path, f"CREATE INDEX ix_{TABLE}_parent_execution_id ON {TABLE} (parent_execution_id)"
    )
    async with open_storage(f"sqlite:///{sqlite_path}") as reopened:
        assert await ids(reopened, KEPT) == ["te_kept"]


async def test_a_whole_table_with_extra_indexes_of_the_users_opens(sqlite_path: Path) -> None:
    await _migrated(sqlite_path, "custom_runs")
    _alter(sqlite_path, "CREATE INDEX my_own_index ON custom_runs (task_id)")
    async with open_storage(f"sqlite:///{sqlite_path}", table_name="custom_runs") as storage:
        assert await ids(storage, KEPT) == ["te_kept"]
    async with open_storage(f"sqlite:///{sqlite_path}", table_name="custom_runs", migrate=False):
        pass
