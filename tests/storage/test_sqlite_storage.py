"""SQLite specifics: waiting for another connection's write lock, giving up clearly, lifetime.

Another connection (as another process would) holds the database's write lock with a raw
``BEGIN IMMEDIATE``; the storage must wait for it within its busy timeout and, past that,
report :class:`SQLiteBusyError` (a ``StorageError``) instead of sqlite3's "database is locked".
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from durable_execution.storage import SQLiteDurableStorage, StorageError, open_storage
from durable_execution.storage.errors import SQLiteBusyError

from ._records import all_ids, insert, record


@contextmanager
def write_lock_held(path: Path) -> Iterator[sqlite3.Connection]:
    """Hold ``path``'s write lock on a separate connection until the block ends (or COMMIT)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield conn
        if conn.in_transaction:
            conn.execute("COMMIT")
    finally:
        conn.close()


async def test_a_transaction_waits_for_another_connections_write_lock(sqlite_path: Path) -> None:
    async with open_storage(f"sqlite:///{sqlite_path}", busy_timeout_ms=10_000) as storage:
        with write_lock_held(sqlite_path) as other:
            asyncio.get_running_loop().call_later(0.3, other.execute, "COMMIT")
            started = time.monotonic()
            await insert(storage, record("te_after_wait"))
            waited = time.monotonic() - started
        assert waited >= 0.25
        assert await all_ids(storage) == ["te_after_wait"]


async def test_a_lock_held_past_the_busy_timeout_is_a_clear_transient_error(
    sqlite_path: Path,
) -> None:
    async with open_storage(f"sqlite:///{sqlite_path}", busy_timeout_ms=20) as storage:
        with write_lock_held(sqlite_path), pytest.raises(SQLiteBusyError) as raised:
            await insert(storage, record("te_never"))
        message = str(raised.value)
        assert "database is locked" not in message
        assert "busy timeout (20 ms)" in message
        assert isinstance(raised.value, StorageError)
        # Once the other connection lets go, the same storage works again.
        await insert(storage, record("te_later"))
        assert await all_ids(storage) == ["te_later"]


async def test_reads_of_other_processes_do_not_block_a_writer(sqlite_path: Path) -> None:
    async with open_storage(f"sqlite:///{sqlite_path}", busy_timeout_ms=1_000) as storage:
        await insert(storage, record("te_a"))
        reader = sqlite3.connect(sqlite_path, isolation_level=None)
        try:
            reader.execute("BEGIN")  # a read transaction holding a WAL snapshot
            assert reader.execute("SELECT count(*) FROM durable_task_executions").fetchone() == (1,)
            await asyncio.wait_for(insert(storage, record("te_b")), timeout=0.5)
            # The reader still sees its snapshot; a new read sees the commit.
            assert reader.execute("SELECT count(*) FROM durable_task_executions").fetchone() == (1,)
            reader.execute("COMMIT")
            assert reader.execute("SELECT count(*) FROM durable_task_executions").fetchone() == (2,)
        finally:
            reader.close()


async def test_close_is_idempotent_and_final(sqlite_path: Path) -> None:
    storage = SQLiteDurableStorage(sqlite_path)
    await storage.migrate()
    await insert(storage, record("te_a"))
    await asyncio.gather(storage.close(), storage.close())
    await storage.close()
    with pytest.raises(StorageError, match="closed"):
        await insert(storage, record("te_b"))
    async with SQLiteDurableStorage(sqlite_path) as reopened:
        assert await all_ids(reopened) == ["te_a"]


async def test_a_transaction_that_runs_nothing_commits_nothing(sqlite_path: Path) -> None:
    async with open_storage(f"sqlite:///{sqlite_path}") as storage:
        statements: list[str] = []
        assert isinstance(storage, SQLiteDurableStorage)
        await storage.run_on_worker(lambda conn: conn.set_trace_callback(statements.append))
        async with storage.transaction():
            pass
        await insert(storage, record("te_a"))
        await storage.run_on_worker(lambda conn: conn.set_trace_callback(None))
    verbs = [statement.split()[0] for statement in statements]
    # BEGIN IMMEDIATE comes with the first statement, so the empty transaction sent nothing.
    assert verbs == ["BEGIN", "SELECT", "INSERT", "COMMIT"]
