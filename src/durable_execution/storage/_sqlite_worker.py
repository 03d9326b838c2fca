"""How the SQLite storage runs statements: one connection, the event loop or a worker thread.

* One ``sqlite3`` connection per storage, used on two threads but never on both at once: the
  event loop's, for every statement that cannot wait, and a dedicated worker thread
  (``ThreadPoolExecutor(1)``) for those that can. A hop to the worker and back costs far more than
  the statements themselves (they take microseconds; the hop waits for the GIL and for the loop
  to wake), so the loop runs them itself while nothing is queued on the worker.
* Only waiting for another process's lock can block for long. SQLite's busy timeout is 0: on the
  loop, ``BEGIN IMMEDIATE`` either takes the write lock at once or answers ``SQLITE_BUSY``, and
  then the worker begins again, waiting for up to ``busy_timeout_ms`` (see
  :mod:`._sqlite_session`). Once the write lock is held, statements and ``COMMIT`` do not
  wait in WAL mode: readers use snapshots, and the auto-checkpoint after a ``COMMIT`` is PASSIVE,
  which never waits for readers or writers. A busy answer that escapes anyway sends the step to
  the worker, or rolls the transaction back if the step had already changed rows (re-running it
  would apply them twice). Without WAL (``:memory:``, a VFS without shared memory) every
  statement runs on the worker, as a COMMIT there may wait for readers.
* The auto-checkpoint (after the COMMIT that brings the WAL to ~1000 pages, some hundreds of
  write transactions) stays on the loop. It costs 5-13 ms of writes and fsyncs on a small VM,
  but the next transaction of this process would wait for it on any thread (it needs the
  connection), and switching checkpoints off altogether moved neither throughput nor latency
  percentiles of the benchmarks beyond their noise; a checkpoint on a second connection of the
  worker is the way out should that change.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Final, TypeVar

from durable_execution.storage import _sqlite_session
from durable_execution.storage._sqlite_session import SqliteSynchronous
from durable_execution.storage.errors import SQLiteBusyError, StorageClosedError, StorageError

_T = TypeVar("_T")

_CLOSED: Final = "The SQLite storage is closed"

_BUSY_MID_TRANSACTION: Final = (
    "The SQLite database was busy in the middle of a transaction; it was rolled back and can be "
    "retried"
)


def _attempt(conn: sqlite3.Connection, step: Callable[[sqlite3.Connection], _T]) -> _T:
    """``step(conn)``; a busy answer after the step changed rows becomes SQLiteBusyError: running
    it again would apply those changes twice, so the transaction is lost instead (rolled back)."""
    changes_before = conn.total_changes
    try:
        return step(conn)
    except sqlite3.OperationalError as error:
        if _sqlite_session.is_busy(error) and conn.total_changes != changes_before:
            raise SQLiteBusyError(_BUSY_MID_TRANSACTION) from None
        raise


def _waiting(
    step: Callable[[sqlite3.Connection], _T], busy_timeout_ms: int
) -> Callable[[sqlite3.Connection], _T]:
    """``step`` for the worker thread: while it is busy before changing anything, wait and retry."""

    def run(conn: sqlite3.Connection) -> _T:
        return _sqlite_session.retry_busy(
            lambda: _attempt(conn, step), "run a statement", busy_timeout_ms
        )

    return run


class SQLiteConnection:
    """The storage's one connection and the worker thread; opened by the first step."""

    def __init__(
        self, path: str | os.PathLike[str], busy_timeout_ms: int, synchronous: SqliteSynchronous
    ) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self.synchronous = synchronous
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="durable-sqlite")
        # Opened on the worker; used on the loop too, but only while _worker_idle().
        self._conn: sqlite3.Connection | None = None
        self._inline = False  # whether the loop may run statements (WAL; known once connected)
        self._worker_idle: Callable[[], bool] = lambda: True  # the last worker job is done
        self._closed = False

    # The worker thread -------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                conn = _sqlite_session.connect(self.path, self.busy_timeout_ms, self.synchronous)
            except sqlite3.OperationalError as error:
                if _sqlite_session.is_busy(error):
                    raise
                raise StorageError(f"Cannot open SQLite database {self.path}: {error}") from None
            self._inline = _sqlite_session.in_wal_mode(conn)
            self._conn = conn
        return self._conn

    def _submit(self, step: Callable[[sqlite3.Connection], _T]) -> Future[_T]:
        future = self._worker.submit(lambda: step(self._connection()))
        self._worker_idle = future.done
        return future

    async def run_on_worker(self, step: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``step`` with the connection on the worker thread and return its result.

        If the awaiting task is cancelled, a step that already started still finishes on the
        thread; one that had not started is dropped.
        """
        if self._closed:
            raise StorageClosedError(_CLOSED)
        return await asyncio.wrap_future(self._submit(step))

    async def _run_to_completion(self, step: Callable[[sqlite3.Connection], None]) -> None:
        """Like :meth:`run_on_worker`, but a cancellation of the caller cannot drop ``step``.

        For COMMIT and ROLLBACK: the connection must never be left inside a transaction.
        """
        await asyncio.shield(asyncio.wrap_future(self._submit(step)))

    # The event-loop thread -----------------------------------------------------------------

    def _loop_connection(self) -> sqlite3.Connection | None:
        """The connection, if the loop may use it now, else None.

        None before the worker has connected, without WAL, and while a worker job is queued or
        running (a cancelled caller stops awaiting its job, but the job still uses the
        connection): the caller then queues its step on the worker, behind that job.
        """
        conn = self._conn
        if conn is None or not self._inline:
            return None
        if not self._worker_idle():
            return None
        return conn

    async def run_step(self, step: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``step``, on the event loop unless it would wait for another connection's lock.

        A busy answer on the loop sends ``step`` to the worker, where it may wait, unless it had
        already changed rows: then the transaction is lost (SQLiteBusyError), not applied twice.
        """
        if self._closed:
            raise StorageClosedError(_CLOSED)
        conn = self._loop_connection()
        if conn is not None:
            try:
                return _attempt(conn, step)
            except sqlite3.OperationalError as error:
                if not _sqlite_session.is_busy(error):
                    raise
        return await self.run_on_worker(_waiting(step, self.busy_timeout_ms))

    async def begin_and_run(self, step: Callable[[sqlite3.Connection], _T]) -> _T:
        """``BEGIN IMMEDIATE``, then :meth:`run_step`; a begin that must wait for another
        process's write lock runs on the worker, together with ``step`` (one hop, not two)."""
        if self._closed:
            raise StorageClosedError(_CLOSED)
        conn = self._loop_connection()
        if conn is not None:
            try:
                _sqlite_session.begin_immediate_once(conn)
            except sqlite3.OperationalError as error:
                if not _sqlite_session.is_busy(error):
                    raise
            else:
                return await self.run_step(step)
        busy_timeout_ms = self.busy_timeout_ms

        def begin_then_step(conn: sqlite3.Connection) -> _T:
            _sqlite_session.begin_immediate(conn, busy_timeout_ms)
            return _waiting(step, busy_timeout_ms)(conn)

        return await self.run_on_worker(begin_then_step)

    async def commit(self) -> None:
        conn = self._loop_connection()
        if conn is not None:
            try:
                _sqlite_session.commit_once(conn)
                return
            except sqlite3.OperationalError as error:
                if not _sqlite_session.is_busy(error):
                    raise
        busy_timeout_ms = self.busy_timeout_ms
        await self._run_to_completion(lambda c: _sqlite_session.commit(c, busy_timeout_ms))

    async def rollback(self) -> None:
        conn = self._loop_connection()
        if conn is not None:
            try:
                _sqlite_session.rollback(conn)
                return
            except sqlite3.OperationalError as error:
                if not _sqlite_session.is_busy(error):
                    raise
        await self._run_to_completion(_sqlite_session.rollback)

    # Lifetime ------------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the connection and stop the worker thread; the caller makes sure no step runs."""
        if self._closed:
            return
        self._closed = True
        future = self._worker.submit(self._close_connection)
        await asyncio.shield(asyncio.wrap_future(future))
        self._worker.shutdown(wait=False)

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
