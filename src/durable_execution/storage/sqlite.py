"""The SQLite storage: executions in one database file, shared safely by several processes.

How it works (statement scheduling, between the event loop and a worker thread, is
:mod:`._sqlite_worker`'s):

* Transactions of this process queue on an ``asyncio.Lock`` (one connection can hold one
  transaction); across processes, ``BEGIN IMMEDIATE`` takes the write lock up front and WAL lets
  readers of other processes go on (see :mod:`._sqlite_session`). The contract's locking reads
  (skipping rows other transactions hold) are therefore satisfied by construction: no other
  transaction can hold a row we read.
* Every statement is a generated query (``generated/sqlite``); records become rows through the
  shared :mod:`.conversion` layer, JSON as text and timestamps as epoch milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Final, Self, TypeVar

from durable_execution.clock import from_epoch_ms, to_epoch_ms
from durable_execution.generated import sqlite as lite
from durable_execution.model import TaskExecutionStatus
from durable_execution.storage import (
    _sqlite_rows as _rows,
)
from durable_execution.storage import (
    _sqlite_schema,
    _sqlite_session,
    _sqlite_worker,
    claiming,
    conversion,
    inspection,
    migrate,
)
from durable_execution.storage import (
    _sqlite_steps as _steps,
)
from durable_execution.storage._sqlite_closing import SQLiteClosingMethods
from durable_execution.storage._sqlite_schedules import SQLiteScheduleMethods, list_schedules
from durable_execution.storage._sqlite_session import DEFAULT_SYNCHRONOUS, SqliteSynchronous
from durable_execution.storage.errors import (
    DuplicateExecutionIdError,
    MalformedRowError,
    StorageClosedError,
    StorageError,
)
from durable_execution.storage.types import (
    ClaimedTaskExecutions,
    DurableStorageTx,
    HeldLease,
    PruneCursor,
    PrunedBatch,
    ScheduleListing,
    TaskExecutionRecord,
    TaskExecutionUpdate,
    WhereByExecutionIds,
)

_T = TypeVar("_T")

DEFAULT_BUSY_TIMEOUT_MS: Final = 30_000


# --- the transaction ------------------------------------------------------------------------


class SQLiteStorageTx(SQLiteClosingMethods, SQLiteScheduleMethods):
    """One transaction of a :class:`SQLiteDurableStorage`; valid only inside its ``async with``.

    Every method runs one step through :meth:`SQLiteDurableStorage.run_step` (on the event loop
    unless it would wait). The first step also begins the SQLite transaction (``BEGIN
    IMMEDIATE``): when that must wait for another process, the worker begins and runs the step in
    one hop. A transaction that runs no statement begins nothing.
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
        translated = _steps.translated(step, self._storage.table_name, self._storage.path)
        if self.begun:
            return await self._storage.run_step(translated)
        # Marked before any hop: if the caller is cancelled meanwhile, the BEGIN may still run,
        # and the ROLLBACK that follows must not be skipped (it is harmless if nothing began).
        self.begun = True
        return await self._storage.connection.begin_and_run(translated)

    async def insert_task_executions(self, executions: Sequence[TaskExecutionRecord]) -> list[str]:
        self.raise_if_refused()
        if not executions:
            return []
        columns = [conversion.columns_from_record(record) for record in executions]
        try:
            return await self._run(lambda conn: _steps.insert(self._queries, conn, columns))
        except DuplicateExecutionIdError as error:
            self._refused_ids = error.execution_ids
            raise

    async def get_task_executions(self, execution_ids: Sequence[str]) -> list[TaskExecutionRecord]:
        self.raise_if_refused()
        if not execution_ids:
            return []
        return await self._run(lambda conn: _steps.read_by_ids(self._queries, conn, execution_ids))

    async def get_finished_task_execution_ids(self, execution_ids: Sequence[str]) -> list[str]:
        self.raise_if_refused()
        if not execution_ids:
            return []
        ids = list(dict.fromkeys(execution_ids))
        return await self._run(
            lambda conn: self._queries.get_finished_task_execution_ids(conn, execution_ids=ids)
        )

    async def get_expired_task_executions(
        self, *, now: datetime, limit: int
    ) -> list[TaskExecutionRecord]:
        self.raise_if_refused()
        bound, row_limit = _rows.bound_ms(now, "now"), conversion.positive_limit(limit)
        rows = await self._run(
            lambda conn: self._queries.get_expired_task_executions(
                conn, now=bound, row_limit=row_limit
            )
        )
        return [_rows.record(row) for row in rows]

    async def claim_ready_task_executions(
        self,
        *,
        now: datetime,
        limit: int,
        lease_ms: int,
        queues: Sequence[str] | None = None,
    ) -> ClaimedTaskExecutions:
        """The claim, in one statement (see ``DurableStorageTx``). Concurrency limits need no
        lock here: the statement counts running rows inside the write transaction, which
        excludes every other writer (``BEGIN IMMEDIATE``)."""
        self.raise_if_refused()
        claiming.check_claim_arguments(now, limit, lease_ms, queues)
        if limit == 0 or (queues is not None and not queues):
            return ClaimedTaskExecutions(records=[], malformed=[])
        now_ms = to_epoch_ms(conversion.utc_ms(now, "now"))
        row_limit = min(limit, conversion.MAX_ROW_LIMIT)
        any_queue, names = claiming.queue_filter(queues)
        queues_json = json.dumps(names)

        def claim(conn: sqlite3.Connection) -> ClaimedTaskExecutions:
            try:
                rows = self._queries.claim_ready_task_executions(
                    conn,
                    now=now_ms,
                    lease_ms=lease_ms,
                    row_limit=row_limit,
                    any_queue=any_queue,
                    queues=queues_json,
                )
            except sqlite3.IntegrityError:
                # A poison row (see .claiming); SQLite undid just the failed statement.
                return claiming.claim_each(
                    self._queries.get_ready_task_executions_to_claim(
                        conn,
                        now=now_ms,
                        row_limit=row_limit,
                        any_queue=any_queue,
                        queues=queues_json,
                    ),
                    lambda execution_id: self._queries.claim_ready_task_execution_by_execution_id(
                        conn, now=now_ms, lease_ms=lease_ms, execution_id=execution_id
                    ),
                    _rows.record,
                    (sqlite3.IntegrityError,),
                )
            return claiming.claimed_from_rows(sorted(rows, key=_rows.claim_order), _rows.record)

        return await self._run(claim)

    async def update_task_executions_each(
        self, updates: Sequence[tuple[WhereByExecutionIds, TaskExecutionUpdate]]
    ) -> list[int]:
        """The batch of guarded updates (see ``DurableStorageTx``): the same
        statements as a loop, in one step (see ``_run``)."""
        self.raise_if_refused()
        counts = [0] * len(updates)
        pending = [
            (index, where, _rows.sqlite_changes(changes))
            for index, where, changes in conversion.pending_updates(updates)
        ]
        if not pending:
            return counts

        def update_each(conn: sqlite3.Connection) -> list[int]:
            for index, where, changes in pending:
                counts[index] = _steps.update(self._queries, conn, where, changes)
            return counts

        return await self._run(update_each)

    async def prune_batch(
        self,
        *,
        finished_before: datetime,
        statuses: Sequence[TaskExecutionStatus],
        after: PruneCursor | None,
        limit: int,
        dry_run: bool,
    ) -> PrunedBatch:
        """Retention's batch step (see ``DurableStorageTx``): find, then delete or count."""
        self.raise_if_refused()
        before_ms = _rows.bound_ms(finished_before, "finished_before")
        after_ms = -(2**63) if after is None else _rows.bound_ms(after.finished_at, "after")
        after_id = 0 if after is None else after.row_id

        def prune(conn: sqlite3.Connection) -> PrunedBatch:
            roots = self._queries.get_prunable_roots(
                conn,
                finished_before=before_ms,
                after_finished_at=after_ms,
                after_id=after_id,
                statuses=statuses,
                row_limit=limit,
            )
            if not roots:
                return PrunedBatch(trees=0, executions_by_status={}, cursor=None)
            ids = [root.execution_id for root in roots]
            counts: Counter[TaskExecutionStatus] = Counter()
            if dry_run:
                for row in self._queries.count_execution_trees(
                    conn, root_execution_ids=ids, tree_root_execution_ids=ids
                ):
                    counts[inspection.counted_status(row.status)] += row.execution_count
            else:
                for status in self._queries.delete_execution_trees(
                    conn, root_execution_ids=ids, tree_root_execution_ids=ids
                ):
                    counts[inspection.counted_status(status)] += 1
            last = roots[-1]
            cursor = PruneCursor(finished_at=from_epoch_ms(last.finished_at), row_id=last.id)
            return PrunedBatch(trees=len(roots), executions_by_status=dict(counts), cursor=cursor)

        return await self._run(prune)

    async def renew_task_execution_leases(
        self, leases: Sequence[HeldLease], *, expires_at: datetime
    ) -> list[str]:
        """The batched lease renewal (see ``DurableStorageTx``): one statement,
        the leases passed as one JSON object (no bound-variable limit to mind)."""
        self.raise_if_refused()
        expires_at_ms = to_epoch_ms(conversion.renewal_expires_at(leases, expires_at))
        if not leases:
            return []
        versions = conversion.dump_json_text(
            {lease.execution_id: lease.version for lease in leases}
        )

        return await self._run(
            lambda conn: self._queries.renew_task_execution_leases(
                conn, expires_at=expires_at_ms, leases=versions
            )
        )

    async def try_lock_pruning(self) -> bool:
        """Automatic retention's lock (see ``DurableStorageTx``): this transaction's ``BEGIN
        IMMEDIATE`` is the database's one write lock, so taking it (waiting up to the busy
        timeout, like any transaction here) is the lock."""
        self.raise_if_refused()
        return await self._run(lambda conn: True)

    def close(self) -> None:
        self._open = False


# --- the storage ------------------------------------------------------------------------------


class SQLiteDurableStorage:
    """Executions in a SQLite file. Use ``async with`` (or :meth:`close`) to release it.

    ``table_name`` selects the table (validated as a plain identifier; its indexes and migrations
    table are named after it). ``busy_timeout_ms`` is how long SQLite waits for another process's
    write lock before the storage's own retries start. ``synchronous`` is SQLite's ``PRAGMA
    synchronous``: ``"full"`` (the default) makes every commit survive a power loss or OS crash;
    ``"normal"`` is an opt-in trading that away for speed (a power loss may drop the last
    commits). The schema is created or upgraded by :meth:`migrate` (``open_storage`` calls it
    unless told not to).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        table_name: str = lite.DEFAULT_TABLE,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        synchronous: SqliteSynchronous = DEFAULT_SYNCHRONOUS,
    ) -> None:
        if busy_timeout_ms < 0:
            raise ValueError(f"busy_timeout_ms must be >= 0, got {busy_timeout_ms}")
        self.synchronous = _sqlite_session.check_synchronous(synchronous)
        self.path = Path(path)
        self.table_name = lite.validate_table_name(table_name)
        self.busy_timeout_ms = busy_timeout_ms
        self.queries = lite.Queries(table_name)
        self.connection = _sqlite_worker.SQLiteConnection(
            self.path, busy_timeout_ms, self.synchronous
        )
        self.run_on_worker = self.connection.run_on_worker  # run a step on the worker thread
        self.run_step = self.connection.run_step  # on the loop unless it would wait
        self._lock = asyncio.Lock()
        self._closed = False

    # The storage contract ----------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DurableStorageTx]:
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
                    await self.connection.rollback()
                raise
            tx.close()
            if not tx.begun:
                return
            try:
                await self.connection.commit()
            except BaseException as error:
                await self.connection.rollback()
                # A COMMIT is where WAL frames are written: where a full disk shows up.
                if isinstance(error, sqlite3.OperationalError) and _sqlite_session.is_full(error):
                    raise _sqlite_session.full_error(self.path, error) from error
                raise

    async def migrate(self) -> list[int]:
        """Create or upgrade the schema, then check it (:meth:`verify_schema`); returns the
        migration versions applied now."""
        migrations = lite.migrations_for_table(self.table_name)

        def run(conn: sqlite3.Connection) -> list[int]:
            applied = migrate.migrate_sqlite(conn, self.queries, migrations, self.busy_timeout_ms)
            _sqlite_schema.verify_schema(conn, self.table_name, migrations)
            return applied

        async with self._lock:
            return await self.run_on_worker(run)

    async def verify_schema(self, *, if_exists: bool = False) -> None:
        """Raise StorageError naming each column or index the table lacks or has changed,
        compared with what the migrations create (say, an index dropped by hand). With
        ``if_exists``, a database without the table passes."""
        migrations = lite.migrations_for_table(self.table_name)
        async with self._lock:
            await self.run_on_worker(
                lambda conn: _sqlite_schema.verify_schema(
                    conn, self.table_name, migrations, if_exists=if_exists
                )
            )

    # Inspection (the optional InspectableStorage queries) ---------------------------------

    async def _read(self, step: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run read-only ``step`` between this process's transactions (autocommit: one
        consistent snapshot per statement, no write lock taken; on the loop unless busy)."""
        async with self._lock:
            return await self.run_step(_steps.translated(step, self.table_name, self.path))

    async def list_task_executions(
        self,
        *,
        statuses: Sequence[TaskExecutionStatus] | None = None,
        task_id: str | None = None,
        top_level_only: bool = False,
        limit: int,
        offset: int = 0,
        before_execution_id: str | None = None,
        created_from: datetime | None = None,
        created_before: datetime | None = None,
    ) -> list[TaskExecutionRecord | MalformedRowError]:
        inspection.check_page(limit, offset)
        inspection.check_created_range(created_from, created_before)
        if limit == 0 or (statuses is not None and not statuses):
            return []
        # Stored values are whole milliseconds: both bounds round a sub-millisecond part up.
        from_ms = None if created_from is None else _rows.bound_ms(created_from, "created_from")
        before_ms = (
            None if created_before is None else _rows.bound_ms(created_before, "created_before")
        )

        def select(conn: sqlite3.Connection) -> list[TaskExecutionRecord | MalformedRowError]:
            rows = self.queries.list_task_executions(
                conn,
                before_execution_id=before_execution_id,
                filter_statuses=statuses is not None,
                statuses=statuses or (),
                task_id=task_id,
                top_level_only=top_level_only,
                created_from=from_ms,
                created_before=before_ms,
                row_limit=limit,
                row_offset=offset,
            )
            return inspection.each_decoded(rows, _rows.record)

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
    ) -> TaskExecutionRecord | MalformedRowError | None:
        row = await self._read(
            lambda conn: self.queries.get_oldest_ready_task_execution(conn, task_id=task_id)
        )
        return None if row is None else inspection.decoded(row, _rows.record)

    async def list_task_schedules(self) -> list[ScheduleListing]:
        return await self._read(lambda conn: list_schedules(self.queries, conn))

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
            await self.connection.close()

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
