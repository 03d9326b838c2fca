"""The synchronous SQLite storage of a ``SyncClient``: the same file, statements and locking as
:mod:`.sqlite`, without an event loop.

* Connections are borrowed from a small free list for one read or one transaction, and opened
  (with the async storage's settings, :func:`._sqlite_session.connect`: WAL, ``synchronous``
  FULL unless NORMAL was asked for) only when none is free: reads of several threads go on at
  once (WAL readers never wait), and a server that starts a thread per request does not leave a
  connection behind per thread. At most :data:`MAX_IDLE_CONNECTIONS` are kept between uses.
* Writes of this process queue on one ``threading.Lock`` before ``BEGIN IMMEDIATE``, so the
  threads of one process wait for each other on the lock, not by polling SQLite's busy answer;
  across processes, ``BEGIN IMMEDIATE`` and :func:`._sqlite_session.retry_busy` wait for the
  write lock up to the busy timeout, as the async storage does.
* The statements are :mod:`._sqlite_steps`', shared with the async storage.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final, TypeVar

from durable_execution.generated import sqlite as lite
from durable_execution.storage import _sqlite_session, conversion
from durable_execution.storage import _sqlite_steps as _steps
from durable_execution.storage._sqlite_session import SqliteSynchronous
from durable_execution.storage.errors import StorageClosedError
from durable_execution.storage.sync_types import SyncStorageTx
from durable_execution.storage.types import (
    TaskExecutionCancel,
    TaskExecutionRecord,
)

_T = TypeVar("_T")

MAX_IDLE_CONNECTIONS: Final = 4


class SyncSQLiteTx:
    """One transaction on the calling thread's connection; begins at its first statement."""

    def __init__(self, storage: SyncSQLiteStorage, conn: sqlite3.Connection) -> None:
        self._storage = storage
        self._conn = conn
        self.begun = False

    def _run(self, step: Callable[[sqlite3.Connection], _T]) -> _T:
        storage = self._storage
        if not self.begun:
            _sqlite_session.begin_immediate(self._conn, storage.busy_timeout_ms)
            self.begun = True
        return _steps.translated(step, storage.table_name, storage.path)(self._conn)

    def insert_task_executions(self, executions: Sequence[TaskExecutionRecord]) -> list[str]:
        if not executions:
            return []
        columns = [conversion.columns_from_record(record) for record in executions]
        queries = self._storage.queries
        return self._run(lambda conn: _steps.insert(queries, conn, columns))

    def get_task_executions(self, execution_ids: Sequence[str]) -> list[TaskExecutionRecord]:
        if not execution_ids:
            return []
        queries = self._storage.queries
        return self._run(lambda conn: _steps.read_by_ids(queries, conn, execution_ids))

    def cancel_task_execution(self, cancel: TaskExecutionCancel) -> bool:
        queries = self._storage.queries
        return self._run(lambda conn: _steps.cancel_one(queries, conn, cancel))


class SyncSQLiteStorage:
    """Executions in a SQLite file, for threads without an event loop (see the module doc).

    The options mean what they mean for :class:`.sqlite.SQLiteDurableStorage`. The schema is
    not touched here: the ``SyncClient`` migrates (or checks) it before opening this.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        table_name: str,
        busy_timeout_ms: int,
        synchronous: SqliteSynchronous,
    ) -> None:
        self.path = Path(path)
        self.table_name = lite.validate_table_name(table_name)
        self.busy_timeout_ms = busy_timeout_ms
        self.synchronous = _sqlite_session.check_synchronous(synchronous)
        self.queries = lite.Queries(table_name)
        self._idle: list[sqlite3.Connection] = []
        self._guard = threading.Lock()  # guards _idle and _closed
        self._write_lock = threading.Lock()  # one write transaction of this process at a time
        self._closed = False

    @contextmanager
    def _borrowed(self) -> Iterator[sqlite3.Connection]:
        """A connection for one read or one transaction, given back (or closed) after it."""
        with self._guard:
            if self._closed:
                raise StorageClosedError("The SQLite storage is closed")
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = _sqlite_session.connect(self.path, self.busy_timeout_ms, self.synchronous)
        try:
            yield conn
        finally:
            with self._guard:
                keep = not self._closed and len(self._idle) < MAX_IDLE_CONNECTIONS
                if keep:
                    self._idle.append(conn)
            if not keep:
                conn.close()

    @contextmanager
    def transaction(self) -> Iterator[SyncStorageTx]:
        with self._borrowed() as conn, self._write_lock:
            tx = SyncSQLiteTx(self, conn)
            try:
                yield tx
            except BaseException:
                if tx.begun:
                    _sqlite_session.rollback(conn)
                raise
            if not tx.begun:
                return
            try:
                _sqlite_session.commit(conn, self.busy_timeout_ms)
            except BaseException as error:
                _sqlite_session.rollback(conn)
                # A COMMIT is where WAL frames are written: where a full disk shows up.
                if isinstance(error, sqlite3.OperationalError) and _sqlite_session.is_full(error):
                    raise _sqlite_session.full_error(self.path, error) from error
                raise

    def insert_at_once(self, executions: Sequence[TaskExecutionRecord]) -> list[str]:
        # The duplicate check and the inserts must share the write lock: a transaction.
        with self.transaction() as tx:
            return tx.insert_task_executions(executions)

    def read_task_executions(self, execution_ids: Sequence[str]) -> list[TaskExecutionRecord]:
        """Read in autocommit (one consistent snapshot, no write lock), waiting out a busy
        database like every other statement here."""
        if not execution_ids:
            return []
        step = _steps.translated(
            lambda c: _steps.read_by_ids(self.queries, c, execution_ids),
            self.table_name,
            self.path,
        )
        with self._borrowed() as conn:
            return _sqlite_session.retry_busy(
                lambda: step(conn), "read executions", self.busy_timeout_ms
            )

    def close(self) -> None:
        """Close the idle connections (idempotent); one in use is closed when given back."""
        with self._guard:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
