"""SQLite statements run on the event loop, and only waits go to the worker thread.

The storage runs a statement on the loop when it cannot wait; a busy answer there (another
connection holds a lock) must hand the work to the worker, which waits, while the loop keeps
running other tasks. Other connections hold real locks here; nothing is mocked.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest

from durable_execution.storage import SQLiteDurableStorage, open_storage
from durable_execution.storage.errors import SQLiteBusyError

from ._records import all_ids, insert, record

_T = TypeVar("_T")

SAFETY_S = 10.0  # only bounds a broken run; no assertion depends on it


@contextmanager
def lock_held_until(
    path: Path, release: threading.Event, *, begin: str = "BEGIN IMMEDIATE"
) -> Iterator[None]:
    """Hold ``path``'s lock on another thread's connection until ``release`` is set."""
    locked = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute(begin)
            locked.set()
            release.wait(SAFETY_S)
            conn.execute("COMMIT")
        finally:
            conn.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(SAFETY_S)
        yield
    finally:
        release.set()
        holder.join()


async def ticks_while(work: asyncio.Future[_T], release: threading.Event) -> int:
    """Tick on the loop while ``work`` runs; after five ticks, let the lock go. Returns how
    many ticks happened before ``work`` finished: none if ``work`` blocked the loop."""
    ticks = 0
    while not work.done():
        await asyncio.sleep(0.01)
        if not work.done():
            ticks += 1
        if ticks == 5:
            release.set()
    return ticks


async def test_a_transaction_waits_off_the_loop_for_another_connections_write_lock(
    sqlite_path: Path,
) -> None:
    async with open_storage(f"sqlite:///{sqlite_path}", busy_timeout_ms=30_000) as storage:
        await insert(storage, record("te_before"))  # the first statements ran on the loop
        release = threading.Event()
        with lock_held_until(sqlite_path, release):
            work = asyncio.ensure_future(insert(storage, record("te_after_wait")))
            ticks = await ticks_while(work, release)
            await work
        # The lock is let go only after five ticks: had the wait blocked the loop, the insert
        # would have finished (after the holder's safety release) with no tick in between.
        assert ticks >= 5
        assert await all_ids(storage) == ["te_after_wait", "te_before"]


async def test_a_transaction_cancelled_while_waiting_leaves_nothing_open(
    sqlite_path: Path,
) -> None:
    async with open_storage(f"sqlite:///{sqlite_path}", busy_timeout_ms=30_000) as storage:
        assert isinstance(storage, SQLiteDurableStorage)
        await insert(storage, record("te_a"))
        release = threading.Event()
        with lock_held_until(sqlite_path, release):
            waiting = asyncio.ensure_future(insert(storage, record("te_cancelled")))
            await asyncio.sleep(0.05)  # let it reach the worker's busy wait
            waiting.cancel()
            release.set()  # the cancelled transaction's ROLLBACK waits for its BEGIN
            with pytest.raises(asyncio.CancelledError):
                await waiting
        await storage.run_on_worker(lambda conn: None)  # the cancelled job has finished
        # Its BEGIN ran after the cancellation: the ROLLBACK must have followed it on the worker,
        # or our connection would still hold the write lock.
        other = sqlite3.connect(sqlite_path, isolation_level=None, timeout=1)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert await all_ids(storage) == ["te_a"]
        await insert(storage, record("te_b"))
        assert await all_ids(storage) == ["te_a", "te_b"]


@contextmanager
def side_database(storage_path: Path) -> Iterator[Path]:
    """A rollback-journal database next to the storage's: there, a writer's EXCLUSIVE lock
    makes readers busy (under WAL nothing would), which is how a busy answer reaches a step."""
    side = storage_path.with_name("side.db")
    conn = sqlite3.connect(side, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute("CREATE TABLE IF NOT EXISTS notes (note TEXT)")
        conn.execute("INSERT INTO notes VALUES ('side')")
    finally:
        conn.close()
    yield side


def read_side(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT note FROM side.notes")]


# run_step is called outside a transaction below: BEGIN IMMEDIATE would lock the attached side
# database too, and in WAL mode nothing makes a step busy once the write lock is held.


async def test_a_step_that_is_busy_on_the_loop_is_run_again_on_the_worker(
    sqlite_path: Path,
) -> None:
    async with open_storage(f"sqlite:///{sqlite_path}", busy_timeout_ms=30_000) as storage:
        assert isinstance(storage, SQLiteDurableStorage)
        with side_database(sqlite_path) as side:
            await storage.run_on_worker(lambda conn: conn.execute(f"ATTACH '{side}' AS side"))
            assert await storage.run_step(read_side) == ["side"]  # back on the loop
            release = threading.Event()
            with lock_held_until(side, release, begin="BEGIN EXCLUSIVE"):
                work = asyncio.ensure_future(storage.run_step(read_side))
                ticks = await ticks_while(work, release)
                assert await work == ["side"]
            assert ticks >= 5


async def test_a_step_busy_after_it_changed_rows_is_not_run_twice(sqlite_path: Path) -> None:
    async with open_storage(f"sqlite:///{sqlite_path}", busy_timeout_ms=30_000) as storage:
        assert isinstance(storage, SQLiteDurableStorage)
        await insert(storage, record("te_a"))
        with side_database(sqlite_path) as side:
            await storage.run_on_worker(lambda conn: conn.execute(f"ATTACH '{side}' AS side"))

            def change_then_read_side(conn: sqlite3.Connection) -> list[str]:
                conn.execute("UPDATE durable_task_executions SET timeout_ms = timeout_ms + 1")
                return read_side(conn)

            release = threading.Event()
            with (
                lock_held_until(side, release, begin="BEGIN EXCLUSIVE"),
                pytest.raises(SQLiteBusyError, match="rolled back"),
            ):
                await storage.run_step(change_then_read_side)
        rows = await storage.run_step(
            lambda conn: conn.execute("SELECT timeout_ms FROM durable_task_executions").fetchall()
        )
        assert rows == [(1001,)]  # once, not again on the worker
