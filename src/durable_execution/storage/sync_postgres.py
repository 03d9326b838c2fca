"""The synchronous PostgreSQL storage of a ``SyncClient``: the same table, statements and
transaction settings as :mod:`.postgres`, on a ``psycopg_pool.ConnectionPool``.

* Each transaction borrows one pooled connection for its life (``begun_sync``: a dead pooled
  connection is passed over, as in the async storage); threads run transactions in parallel up
  to the pool size, and wait for a connection beyond it.
* Every pooled connection is configured as the async storage's are: autocommit outside explicit
  transactions, READ COMMITTED, binary arrays (:func:`.postgres.register_adapters`).
* The statements are the generated *synchronous* methods (``pg.Queries``) of the queries marked
  ``-- @sync`` in ``queries/postgresql``; the insert sends the same arrays as the async one
  (:func:`._pg_rows.insert_arrays`).
* Executors of other processes hear of new ready work through the same debounced ``pg_notify``
  after commit (:class:`._pg_notices.ThreadedReadyNotices`), so they start it at once instead of
  at their next idle poll.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Final

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool, PoolClosed

from durable_execution.generated import postgresql as pg
from durable_execution.storage import _pg_listener, _pg_notices, _pg_pool, conversion
from durable_execution.storage import _pg_rows as _rows
from durable_execution.storage._pg_errors import duplicate_ids, missing_table_error
from durable_execution.storage.conversion import Columns
from durable_execution.storage.errors import DuplicateExecutionIdError, StorageClosedError
from durable_execution.storage.postgres import (
    DEFAULT_CONNECT_TIMEOUT_S,
    ready_now,
    register_adapters,
)
from durable_execution.storage.sync_types import SyncStorageTx
from durable_execution.storage.types import (
    TaskExecutionCancel,
    TaskExecutionRecord,
)

_Connection = _pg_pool.SyncConnection

DEFAULT_POOL_MIN_SIZE: Final = 1  # a script or a web worker process: one connection to start
DEFAULT_POOL_MAX_SIZE: Final = 10


class SyncPostgresTx:
    """One transaction on one pooled connection."""

    def __init__(self, conn: _Connection, queries: pg.Queries) -> None:
        self._conn = conn
        self._queries = queries
        self.made_ready = False  # whether it stored work claimable now: notify after commit

    def insert_task_executions(self, executions: Sequence[TaskExecutionRecord]) -> list[str]:
        resolved = insert(self._queries, self._conn, executions)
        self.made_ready = self.made_ready or ready_now(executions)
        return resolved

    def get_task_executions(self, execution_ids: Sequence[str]) -> list[TaskExecutionRecord]:
        return select_by_ids(self._queries, self._conn, execution_ids)

    def cancel_task_execution(self, cancel: TaskExecutionCancel) -> bool:
        arguments = _rows.cancel_arguments(cancel)
        return self._queries.cancel_task_execution(self._conn, **arguments) > 0


def insert(
    queries: pg.Queries, conn: _Connection, executions: Sequence[TaskExecutionRecord]
) -> list[str]:
    """Insert ``executions`` (in the caller's transaction, or in autocommit: the statement is
    atomic by itself, and the read of taken keys' holders that may follow needs no transaction);
    the execution id standing for each (see ``_pg_rows.insert_rows``)."""
    if not executions:
        return []
    rows = [conversion.columns_from_record(record) for record in executions]
    ids = [row.execution_id for row in rows]
    repeated = [execution_id for execution_id, n in Counter(ids).items() if n > 1]
    # With keys, a repeated id is a duplicate only if both rows are stored: the statement decides.
    if repeated and all(row.idempotency_key is None for row in rows):
        raise DuplicateExecutionIdError(repeated)
    try:
        return insert_rows(queries, conn, rows)
    except pg_errors.UniqueViolation as error:
        raise DuplicateExecutionIdError(duplicate_ids(error, ids)) from error


def insert_rows(queries: pg.Queries, conn: _Connection, rows: Sequence[Columns]) -> list[str]:
    """``_pg_rows.insert_rows`` on a synchronous connection: the insert, then the holders of the
    keys it found taken (the same two statements, the same rules: ``_pg_rows.KeyedInsert``)."""
    outcome = _rows.KeyedInsert(rows)
    while outcome.pending:
        batch = outcome.batch()
        outcome.stored(queries.insert_task_executions(conn, **_rows.insert_arrays(batch)))
        if outcome.keyed:
            outcome.holders(
                queries.get_task_execution_ids_by_idempotency_keys(conn, **outcome.holder_arrays())
            )
    return outcome.resolved()


def select_by_ids(
    queries: pg.Queries, conn: _Connection, execution_ids: Sequence[str]
) -> list[TaskExecutionRecord]:
    """The rows of these ids, in insertion order, in a transaction or in autocommit (the
    caller's)."""
    if not execution_ids:
        return []
    rows = queries.get_task_executions_by_ids(
        conn, execution_ids=list(dict.fromkeys(execution_ids))
    )
    return [conversion.record_from_columns(row) for row in rows]


def _configure(conn: _Connection) -> None:
    """Every pooled connection, as the async storage's (see ``postgres._configure``)."""
    conn.autocommit = True
    conn.isolation_level = psycopg.IsolationLevel.READ_COMMITTED
    register_adapters(conn.adapters)


class SyncPostgresStorage:
    """Executions in a PostgreSQL table, for threads without an event loop (see the module
    doc). :meth:`open` before use; :meth:`close` flushes the last ready notice and closes the
    pool. The schema is not touched here: the ``SyncClient`` migrates it before opening this."""

    def __init__(
        self,
        conninfo: str,
        *,
        table_name: str,
        pool_min_size: int = DEFAULT_POOL_MIN_SIZE,
        pool_max_size: int = DEFAULT_POOL_MAX_SIZE,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    ) -> None:
        _pg_pool.check_pool_sizes(pool_min_size, pool_max_size)
        self.table_name = pg.validate_table_name(table_name)
        self.pool_max_size = pool_max_size
        self.queries = pg.Queries(table_name)
        self.ready_channel = _pg_listener.ready_channel(self.table_name)
        self._connect_timeout_s = connect_timeout_s
        self.notices = _pg_notices.ThreadedReadyNotices(self._send_ready_notice)
        self._pool: ConnectionPool[_Connection] = ConnectionPool(
            conninfo,
            min_size=pool_min_size,
            max_size=pool_max_size,
            open=False,
            configure=_configure,
            timeout=connect_timeout_s,
            name="durable-execution-sync",
        )

    def open(self) -> None:
        self._pool.open(wait=True, timeout=self._connect_timeout_s)

    @contextmanager
    def transaction(self) -> Iterator[SyncStorageTx]:
        try:
            with _pg_pool.begun_sync(self._pool, self.pool_max_size) as conn:
                tx = SyncPostgresTx(conn, self.queries)
                yield tx
            if tx.made_ready:
                self.notices.poke()  # committed: other processes may claim it now
        except PoolClosed:
            raise StorageClosedError("The PostgreSQL storage is closed") from None
        except pg_errors.UndefinedTable as error:
            raise missing_table_error(self.table_name, error) from None

    def insert_at_once(self, executions: Sequence[TaskExecutionRecord]) -> list[str]:
        """One INSERT in autocommit: atomic by itself, and one round trip where a transaction
        takes three. A pooled connection the server dropped fails here like any lost
        connection; the caller's retry (in a transaction, finding its own rows) replaces it."""
        try:
            with self._pool.connection() as conn:
                resolved = insert(self.queries, conn, executions)
        except PoolClosed:
            raise StorageClosedError("The PostgreSQL storage is closed") from None
        except pg_errors.UndefinedTable as error:
            raise missing_table_error(self.table_name, error) from None
        if ready_now(executions):
            self.notices.poke()
        return resolved

    def read_task_executions(self, execution_ids: Sequence[str]) -> list[TaskExecutionRecord]:
        """One statement in a short transaction of its own: ``begun_sync`` passes over pooled
        connections the server dropped meanwhile (a restart), as for writes."""
        try:
            with _pg_pool.begun_sync(self._pool, self.pool_max_size) as conn:
                return select_by_ids(self.queries, conn, execution_ids)
        except PoolClosed:
            raise StorageClosedError("The PostgreSQL storage is closed") from None
        except pg_errors.UndefinedTable as error:
            raise missing_table_error(self.table_name, error) from None

    def _send_ready_notice(self) -> None:
        with _pg_pool.begun_sync(self._pool, self.pool_max_size) as conn:
            self.queries.notify_ready(conn, channel=self.ready_channel)

    def close(self) -> None:
        """Send the ready notice still owed, then close the pool (idempotent)."""
        self.notices.close()
        self._pool.close()
