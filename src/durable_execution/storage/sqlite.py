"""The SQLite storage: executions in one database file, shared safely by several processes.

How it works:

* One ``sqlite3`` connection per storage, created and used only on a dedicated worker thread
  (``ThreadPoolExecutor(1)``), so blocking SQLite calls never stall the event loop and the
  connection never crosses threads.
* Transactions of this process queue on an ``asyncio.Lock`` (one connection can hold one
  transaction); across processes, ``BEGIN IMMEDIATE`` takes the write lock up front and WAL lets
  readers of other processes go on (see :mod:`._sqlite_session`). ``skip_locked_for_update`` is
  therefore satisfied by construction: no other transaction can hold a row we read.
* Every statement is a generated query (``generated/sqlite``); records become rows through the
  shared :mod:`.conversion` layer, JSON as text and timestamps as epoch milliseconds.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Final, Self, TypedDict, TypeVar

from durable_execution.clock import from_epoch_ms, to_epoch_ms
from durable_execution.generated import sqlite as lite
from durable_execution.generated.sqlite.models import DurableTaskExecution as SqliteRow
from durable_execution.model import TaskExecutionStatus
from durable_execution.storage import _sqlite_session, conversion, inspection, migrate
from durable_execution.storage.conversion import Columns, JsonValue
from durable_execution.storage.errors import (
    DuplicateExecutionIdError,
    StorageClosedError,
    StorageError,
)
from durable_execution.storage.types import (
    DurableStorageTx,
    TaskExecutionRecord,
    TaskExecutionUpdate,
    TaskExecutionWhere,
    WhereByExecutionIds,
    WhereByStartAtLessThan,
    WhereByStatuses,
)

_T = TypeVar("_T")

DEFAULT_BUSY_TIMEOUT_MS: Final = 30_000


# --- neutral columns <-> SQLite values ---------------------------------------------------------


def _json_text(value: JsonValue) -> str | None:
    return None if value is None else conversion.dump_json_text(value)


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else to_epoch_ms(moment)


def _from_ms(epoch_ms: int | None) -> datetime | None:
    return None if epoch_ms is None else from_epoch_ms(epoch_ms)


def _bound_ms(moment: datetime, name: str) -> int:
    """An exclusive upper bound in epoch ms: ``stored < bound`` means the same as in Python.

    Stored values are whole milliseconds, so ``x < 10.5 ms`` holds exactly when ``x < 11``:
    a bound with a sub-millisecond part rounds *up*.
    """
    if moment.tzinfo is None:
        raise ValueError(f"{name} is a naive datetime ({moment!r}); timestamps must be aware")
    floor = to_epoch_ms(moment)
    return floor + 1 if moment.microsecond % 1000 else floor


def _columns(row: SqliteRow) -> Columns:
    """A row's values in the neutral form (JSON decoded, timestamps as aware datetimes)."""

    def json_column(column: str, text: str | None) -> JsonValue:
        return conversion.load_json_text(text, execution_id=row.execution_id, column=column)

    return Columns(
        root_task_id=row.root_task_id,
        root_execution_id=row.root_execution_id,
        parent_task_id=row.parent_task_id,
        parent_execution_id=row.parent_execution_id,
        is_finalize_task=row.is_finalize_task,
        task_id=row.task_id,
        execution_id=row.execution_id,
        retry_options=json_column("retry_options", row.retry_options),
        sleep_ms_before_run=row.sleep_ms_before_run,
        timeout_ms=row.timeout_ms,
        run_input=row.run_input,
        run_output=row.run_output,
        output=row.output,
        children_tasks_completed_count=row.children_tasks_completed_count,
        children_tasks=json_column("children_tasks", row.children_tasks),
        children_tasks_errors=json_column("children_tasks_errors", row.children_tasks_errors),
        finalize_task=json_column("finalize_task", row.finalize_task),
        finalize_task_error=json_column("finalize_task_error", row.finalize_task_error),
        error=json_column("error", row.error),
        status=row.status,
        is_closed=row.is_closed,
        needs_promise_cancellation=row.needs_promise_cancellation,
        retry_attempts=row.retry_attempts,
        lease_expiries=row.lease_expiries,
        start_at=from_epoch_ms(row.start_at),
        started_at=_from_ms(row.started_at),
        finished_at=_from_ms(row.finished_at),
        expires_at=_from_ms(row.expires_at),
        version=row.version,
        created_at=from_epoch_ms(row.created_at),
        updated_at=from_epoch_ms(row.updated_at),
    )


def _record(row: SqliteRow) -> TaskExecutionRecord:
    return conversion.record_from_columns(_columns(row))


# --- the transaction ------------------------------------------------------------------------


class SQLiteStorageTx:
    """One transaction of a :class:`SQLiteDurableStorage`; valid only inside its ``async with``.

    Every method hands one blocking step to the storage's worker thread. The first step also
    begins the SQLite transaction (``BEGIN IMMEDIATE``, in the same hop): each hop waits for the
    event loop to come round, and transactions of one process queue behind each other, so one
    hop fewer per transaction is throughput. A transaction that runs no statement begins nothing.
    """

    def __init__(self, storage: SQLiteDurableStorage) -> None:
        self._storage = storage
        self._queries = storage.queries
        self._open = True
        self.begun = False  # whether BEGIN IMMEDIATE was sent (so COMMIT/ROLLBACK are due)
        self._refused_ids: list[str] | None = None  # set by an insert refused as duplicate

    def raise_if_refused(self) -> None:
        """A refused insert dooms the transaction (the contract: it stores nothing), as it does
        on PostgreSQL: later calls and the end of the block raise the refusal again, so a caller
        that caught it cannot commit the transaction's other writes by accident."""
        if self._refused_ids is not None:
            raise DuplicateExecutionIdError(self._refused_ids)

    async def _run(self, step: Callable[[sqlite3.Connection], _T]) -> _T:
        if not self._open:
            raise StorageError("The transaction is over; open a new one")
        if self.begun:
            return await self._storage.run_on_worker(_translated(step, self._storage.table_name))
        busy_timeout_ms = self._storage.busy_timeout_ms

        def begin_then_step(conn: sqlite3.Connection) -> _T:
            _sqlite_session.begin_immediate(conn, busy_timeout_ms)
            return step(conn)

        # Marked before the hop: if the caller is cancelled meanwhile, the BEGIN may still run,
        # and the ROLLBACK that follows must not be skipped (it is harmless if nothing began).
        self.begun = True
        return await self._storage.run_on_worker(
            _translated(begin_then_step, self._storage.table_name)
        )

    async def insert_task_executions(self, executions: Sequence[TaskExecutionRecord]) -> None:
        self.raise_if_refused()
        if not executions:
            return
        columns = [conversion.columns_from_record(record) for record in executions]
        try:
            await self._run(lambda conn: self._insert(conn, columns))
        except DuplicateExecutionIdError as error:
            self._refused_ids = error.execution_ids
            raise

    def _insert(self, conn: sqlite3.Connection, rows: Sequence[Columns]) -> None:
        # Duplicates are found before anything is written, so a refused insert writes nothing
        # (and the transaction then refuses everything: see raise_if_refused). Nobody else can
        # insert between this check and the inserts: the transaction holds the write lock.
        ids = [row.execution_id for row in rows]
        repeated = [execution_id for execution_id, n in Counter(ids).items() if n > 1]
        existing = self._queries.get_task_execution_ids_by_execution_ids(
            conn,
            execution_ids=ids,
            filter_statuses=False,
            statuses=(),
            needs_promise_cancellation=None,
            version=None,
            row_limit=None,
        )
        duplicates = list(dict.fromkeys([*(r.execution_id for r in existing), *repeated]))
        if duplicates:
            raise DuplicateExecutionIdError(duplicates)
        for row in rows:
            try:
                self._insert_one(conn, row)
            except sqlite3.IntegrityError as error:
                raise StorageError(
                    f"SQLite refused to store execution {row.execution_id}: {error}"
                ) from error

    def _insert_one(self, conn: sqlite3.Connection, c: Columns) -> None:
        self._queries.insert_task_execution(
            conn,
            root_task_id=c.root_task_id,
            root_execution_id=c.root_execution_id,
            parent_task_id=c.parent_task_id,
            parent_execution_id=c.parent_execution_id,
            is_finalize_task=c.is_finalize_task,
            task_id=c.task_id,
            execution_id=c.execution_id,
            retry_options=conversion.dump_json_text(c.retry_options),
            sleep_ms_before_run=c.sleep_ms_before_run,
            timeout_ms=c.timeout_ms,
            run_input=c.run_input,
            run_output=c.run_output,
            output=c.output,
            children_tasks_completed_count=c.children_tasks_completed_count,
            children_tasks=_json_text(c.children_tasks),
            children_tasks_errors=_json_text(c.children_tasks_errors),
            finalize_task=_json_text(c.finalize_task),
            finalize_task_error=_json_text(c.finalize_task_error),
            error=_json_text(c.error),
            status=c.status,
            is_closed=c.is_closed,
            needs_promise_cancellation=c.needs_promise_cancellation,
            retry_attempts=c.retry_attempts,
            lease_expiries=c.lease_expiries,
            start_at=to_epoch_ms(c.start_at),
            started_at=_ms(c.started_at),
            finished_at=_ms(c.finished_at),
            expires_at=_ms(c.expires_at),
            version=c.version,
            created_at=to_epoch_ms(c.created_at),
            updated_at=to_epoch_ms(c.updated_at),
        )

    async def get_task_execution_ids(
        self,
        where: TaskExecutionWhere,
        *,
        limit: int | None = None,
        skip_locked_for_update: bool = False,
    ) -> list[str]:
        # skip_locked_for_update needs no query of its own: see the module docstring.
        self.raise_if_refused()
        conversion.check_limit(limit)
        if limit == 0 or conversion.matches_nothing(where):
            return []
        limit = conversion.row_limit(limit)
        return await self._run(lambda conn: self._select_ids(conn, where, limit))

    def _select_ids(
        self, conn: sqlite3.Connection, where: TaskExecutionWhere, limit: int | None
    ) -> list[str]:
        q = self._queries
        match where:
            case WhereByExecutionIds():
                rows = q.get_task_execution_ids_by_execution_ids(
                    conn,
                    execution_ids=where.execution_ids,
                    filter_statuses=where.statuses is not None,
                    statuses=where.statuses or (),
                    needs_promise_cancellation=where.needs_promise_cancellation,
                    version=where.version,
                    row_limit=limit,
                )
                return [row.execution_id for row in rows]
            case WhereByStatuses():
                by_status = q.get_task_execution_ids_by_statuses(
                    conn,
                    statuses=where.statuses,
                    is_closed=where.is_closed,
                    expires_at_less_than=_optional_bound(where.expires_at_less_than),
                    row_limit=limit,
                )
                return [row.execution_id for row in by_status]
            case WhereByStartAtLessThan():
                by_start = q.get_task_execution_ids_by_start_at_less_than(
                    conn,
                    statuses=where.statuses,
                    start_at_less_than=_bound_ms(where.start_at_less_than, "start_at_less_than"),
                    row_limit=limit,
                )
                return [row.execution_id for row in by_start]

    async def get_task_executions(
        self,
        where: TaskExecutionWhere,
        *,
        limit: int | None = None,
        skip_locked_for_update: bool = False,
    ) -> list[TaskExecutionRecord]:
        self.raise_if_refused()
        conversion.check_limit(limit)
        if limit == 0 or conversion.matches_nothing(where):
            return []
        limit = conversion.row_limit(limit)
        return await self._run(lambda conn: self._select_records(conn, where, limit))

    def _select_records(
        self, conn: sqlite3.Connection, where: TaskExecutionWhere, limit: int | None
    ) -> list[TaskExecutionRecord]:
        q = self._queries
        match where:
            case WhereByExecutionIds():
                rows = q.get_task_executions_by_execution_ids(
                    conn,
                    execution_ids=where.execution_ids,
                    filter_statuses=where.statuses is not None,
                    statuses=where.statuses or (),
                    needs_promise_cancellation=where.needs_promise_cancellation,
                    version=where.version,
                    row_limit=limit,
                )
            case WhereByStatuses():
                rows = q.get_task_executions_by_statuses(
                    conn,
                    statuses=where.statuses,
                    is_closed=where.is_closed,
                    expires_at_less_than=_optional_bound(where.expires_at_less_than),
                    row_limit=limit,
                )
            case WhereByStartAtLessThan():
                rows = q.get_task_executions_by_start_at_less_than(
                    conn,
                    statuses=where.statuses,
                    start_at_less_than=_bound_ms(where.start_at_less_than, "start_at_less_than"),
                    row_limit=limit,
                )
        return [_record(row) for row in rows]

    async def update_task_executions(
        self, where: TaskExecutionWhere, update: TaskExecutionUpdate
    ) -> int:
        self.raise_if_refused()
        if conversion.matches_nothing(where):
            return 0
        changes = _sqlite_changes(conversion.changes_from_update(update))
        return await self._run(lambda conn: self._update(conn, where, changes))

    def _update(
        self, conn: sqlite3.Connection, where: TaskExecutionWhere, changes: _SqliteChanges
    ) -> int:
        q = self._queries
        try:
            match where:
                case WhereByExecutionIds():
                    return q.update_task_executions_by_execution_ids(
                        conn,
                        **changes,
                        execution_ids=where.execution_ids,
                        filter_statuses=where.statuses is not None,
                        statuses=where.statuses or (),
                        needs_promise_cancellation=where.needs_promise_cancellation,
                        version=where.version,
                    )
                case WhereByStatuses():
                    return q.update_task_executions_by_statuses(
                        conn,
                        **changes,
                        statuses=where.statuses,
                        is_closed=where.is_closed,
                        expires_at_less_than=_optional_bound(where.expires_at_less_than),
                    )
                case WhereByStartAtLessThan():
                    return q.update_task_executions_by_start_at_less_than(
                        conn,
                        **changes,
                        statuses=where.statuses,
                        start_at_less_than=_bound_ms(
                            where.start_at_less_than, "start_at_less_than"
                        ),
                    )
        except sqlite3.IntegrityError as error:
            raise StorageError(f"SQLite refused the update: {error}") from error

    def close(self) -> None:
        self._open = False


def _translated(
    step: Callable[[sqlite3.Connection], _T], table: str
) -> Callable[[sqlite3.Connection], _T]:
    """``step``, with the sqlite3 errors a user can act on turned into clear storage errors."""

    def run(conn: sqlite3.Connection) -> _T:
        try:
            return step(conn)
        except sqlite3.OperationalError as error:
            if _sqlite_session.is_busy(error):
                # Should not happen under BEGIN IMMEDIATE; the transaction is rolled back.
                raise _sqlite_session.SQLiteBusyError(
                    "The SQLite database was busy in the middle of a transaction; it was rolled "
                    "back and can be retried"
                ) from None
            if "no such table" in str(error):
                raise StorageError(
                    f"Table {table} does not exist ({error}): create it with migrate() "
                    "(open_storage does unless migrate=False)"
                ) from None
            raise

    return run


def _optional_bound(moment: datetime | None) -> int | None:
    return None if moment is None else _bound_ms(moment, "expires_at_less_than")


class _SqliteChanges(TypedDict):
    """The value parameters of the SQLite update queries: JSON as text, epoch milliseconds."""

    new_run_output: str | None
    new_output: str | None
    new_children_tasks_completed_count: int | None
    new_children_tasks: str | None
    new_children_tasks_errors: str | None
    new_finalize_task: str | None
    new_finalize_task_error: str | None
    unset_error: bool
    new_error: str | None
    new_status: str | None
    new_is_closed: bool | None
    new_needs_promise_cancellation: bool | None
    new_retry_attempts: int | None
    new_lease_expiries: int | None
    new_start_at: int | None
    new_started_at: int | None
    new_finished_at: int | None
    unset_expires_at: bool
    new_expires_at: int | None
    new_version: int | None
    new_updated_at: int


def _sqlite_changes(c: conversion.ColumnChanges) -> _SqliteChanges:
    return _SqliteChanges(
        new_run_output=c["new_run_output"],
        new_output=c["new_output"],
        new_children_tasks_completed_count=c["new_children_tasks_completed_count"],
        new_children_tasks=_json_text(c["new_children_tasks"]),
        new_children_tasks_errors=_json_text(c["new_children_tasks_errors"]),
        new_finalize_task=_json_text(c["new_finalize_task"]),
        new_finalize_task_error=_json_text(c["new_finalize_task_error"]),
        unset_error=c["unset_error"],
        new_error=_json_text(c["new_error"]),
        new_status=c["new_status"],
        new_is_closed=c["new_is_closed"],
        new_needs_promise_cancellation=c["new_needs_promise_cancellation"],
        new_retry_attempts=c["new_retry_attempts"],
        new_lease_expiries=c["new_lease_expiries"],
        new_start_at=_ms(c["new_start_at"]),
        new_started_at=_ms(c["new_started_at"]),
        new_finished_at=_ms(c["new_finished_at"]),
        unset_expires_at=c["unset_expires_at"],
        new_expires_at=_ms(c["new_expires_at"]),
        new_version=c["new_version"],
        new_updated_at=to_epoch_ms(c["new_updated_at"]),
    )


# --- the storage ------------------------------------------------------------------------------


class SQLiteDurableStorage:
    """Executions in a SQLite file. Use ``async with`` (or :meth:`close`) to release it.

    ``table_name`` selects the table (validated as a plain identifier; its indexes and migrations
    table are named after it). ``busy_timeout_ms`` is how long SQLite waits for another process's
    write lock before the storage's own retries start. The schema is created or upgraded by
    :meth:`migrate` (``open_storage`` calls it unless told not to).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        table_name: str = lite.DEFAULT_TABLE,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    ) -> None:
        if busy_timeout_ms < 0:
            raise ValueError(f"busy_timeout_ms must be >= 0, got {busy_timeout_ms}")
        self.path = Path(path)
        self.table_name = lite.validate_table_name(table_name)
        self.busy_timeout_ms = busy_timeout_ms
        self.queries = lite.Queries(table_name)
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="durable-sqlite")
        self._lock = asyncio.Lock()
        self._conn: sqlite3.Connection | None = None  # touched only on the worker thread
        self._closed = False

    # The worker thread -------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self._conn = _sqlite_session.connect(self.path, self.busy_timeout_ms)
            except sqlite3.OperationalError as error:
                if _sqlite_session.is_busy(error):
                    raise
                raise StorageError(f"Cannot open SQLite database {self.path}: {error}") from None
        return self._conn

    async def run_on_worker(self, step: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``step`` with the connection on the worker thread and return its result.

        If the awaiting task is cancelled, a step that already started still finishes on the
        thread; one that had not started is dropped.
        """
        if self._closed:
            raise StorageClosedError("The SQLite storage is closed")
        future = self._worker.submit(lambda: step(self._connection()))
        return await asyncio.wrap_future(future)

    async def _run_to_completion(self, step: Callable[[sqlite3.Connection], None]) -> None:
        """Like :meth:`run_on_worker`, but a cancellation of the caller cannot drop ``step``.

        For COMMIT and ROLLBACK: the connection must never be left inside a transaction.
        """
        future = self._worker.submit(lambda: step(self._connection()))
        await asyncio.shield(asyncio.wrap_future(future))

    # The storage contract ----------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DurableStorageTx]:
        timeout = self.busy_timeout_ms
        async with self._lock:
            if self._closed:
                raise StorageClosedError("The SQLite storage is closed")
            tx = SQLiteStorageTx(self)
            try:
                yield tx
                tx.raise_if_refused()
            except BaseException:
                # Cancellation included: an interrupted transaction must not half-commit.
                tx.close()
                if tx.begun:
                    await self._run_to_completion(_sqlite_session.rollback)
                raise
            tx.close()
            if not tx.begun:
                return
            try:
                await self._run_to_completion(lambda conn: _sqlite_session.commit(conn, timeout))
            except BaseException:
                await self._run_to_completion(_sqlite_session.rollback)
                raise

    async def migrate(self) -> list[int]:
        """Create or upgrade the schema; returns the migration versions applied now."""
        migrations = lite.migrations_for_table(self.table_name)
        async with self._lock:
            return await self.run_on_worker(
                lambda conn: migrate.migrate_sqlite(
                    conn, self.queries, migrations, self.busy_timeout_ms
                )
            )

    # Inspection (the optional InspectableStorage queries) ---------------------------------

    async def _read(self, step: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run read-only ``step`` between this process's transactions (autocommit: one
        consistent snapshot per statement, no write lock taken)."""
        async with self._lock:
            return await self.run_on_worker(_translated(step, self.table_name))

    async def list_task_executions(
        self,
        *,
        statuses: Sequence[TaskExecutionStatus] | None = None,
        task_id: str | None = None,
        top_level_only: bool = False,
        limit: int,
        offset: int = 0,
    ) -> list[TaskExecutionRecord]:
        inspection.check_page(limit, offset)
        if limit == 0 or (statuses is not None and not statuses):
            return []

        def select(conn: sqlite3.Connection) -> list[TaskExecutionRecord]:
            rows = self.queries.list_task_executions(
                conn,
                filter_statuses=statuses is not None,
                statuses=statuses or (),
                task_id=task_id,
                top_level_only=top_level_only,
                row_limit=limit,
                row_offset=offset,
            )
            return [_record(row) for row in rows]

        return await self._read(select)

    async def count_task_executions_by_status(
        self, *, task_id: str | None = None, top_level_only: bool = False
    ) -> dict[TaskExecutionStatus, int]:
        rows = await self._read(
            lambda conn: self.queries.count_task_executions_by_status(
                conn, task_id=task_id, top_level_only=top_level_only
            )
        )
        return {inspection.counted_status(row.status): row.execution_count for row in rows}

    async def get_oldest_ready_task_execution(
        self, *, task_id: str | None = None
    ) -> TaskExecutionRecord | None:
        row = await self._read(
            lambda conn: self.queries.get_oldest_ready_task_execution(conn, task_id=task_id)
        )
        return None if row is None else _record(row)

    # Lifetime ------------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the database file now (it is otherwise opened by the first transaction), so
        that a bad path fails here with a clear error. Idempotent."""
        await self.run_on_worker(lambda conn: None)

    async def close(self) -> None:
        """Close the connection and stop the worker thread (idempotent)."""
        if self._closed:
            return
        async with self._lock:  # waits for the transaction in progress, if any
            if self._closed:  # a concurrent close() got here first
                return
            self._closed = True
            future = self._worker.submit(self._close_connection)
            await asyncio.shield(asyncio.wrap_future(future))
            self._worker.shutdown(wait=False)

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def __aenter__(self) -> Self:
        try:
            await self.open()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
