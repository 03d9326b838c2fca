"""PostgreSQL statements that bind a whole batch: records and updates as one array per column.

The insert and the batched guarded update send every column as an array (``unnest`` in the
SQL), so a batch of any size is one statement and one round trip (two when some record's
idempotency key was taken: the holders are then read, see :func:`insert_rows`).
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, TypedDict

from durable_execution.generated import postgresql as pg
from durable_execution.generated.postgresql.models import GetTaskExecutionIdsByIdempotencyKeysRow
from durable_execution.storage._pg_pool import Connection
from durable_execution.storage.conversion import ColumnChanges, Columns, JsonValue, utc_ms
from durable_execution.storage.error_json import error_json
from durable_execution.storage.errors import StorageError
from durable_execution.storage.types import TaskExecutionCancel, WhereByExecutionIds

# How often an insert is retried for records whose key holder vanished between the insert that
# skipped them and the read of their holders (a prune deleted it: the key is free again).
_KEY_ATTEMPTS: Final = 3


class InsertArrays(TypedDict):
    """The parameters of ``InsertTaskExecutions``: one array per column, one element per row."""

    root_task_id: list[str | None]
    root_execution_id: list[str | None]
    parent_task_id: list[str | None]
    parent_execution_id: list[str | None]
    is_finalize_task: list[bool | None]
    task_id: list[str | None]
    execution_id: list[str | None]
    retry_options: list[JsonValue]
    sleep_ms_before_run: list[int | None]
    timeout_ms: list[int | None]
    run_input: list[str | None]
    run_output: list[str | None]
    output: list[str | None]
    children_tasks_completed_count: list[int | None]
    children_tasks: list[JsonValue]
    children_tasks_errors: list[JsonValue]
    finalize_task: list[JsonValue]
    finalize_task_error: list[JsonValue]
    error: list[JsonValue]
    status: list[str | None]
    is_closed: list[bool | None]
    needs_promise_cancellation: list[bool | None]
    retry_attempts: list[int | None]
    lease_expiries: list[int | None]
    start_at: list[datetime.datetime | None]
    started_at: list[datetime.datetime | None]
    finished_at: list[datetime.datetime | None]
    expires_at: list[datetime.datetime | None]
    version: list[int | None]
    created_at: list[datetime.datetime | None]
    updated_at: list[datetime.datetime | None]
    rerun_of_execution_id: list[str | None]
    trace_context: list[str | None]
    queue: list[str]
    concurrency_key: list[str | None]
    concurrency_limit: list[int | None]
    idempotency_key: list[str | None]
    priority: list[int | None]


def insert_arrays(rows: Sequence[Columns]) -> InsertArrays:
    """The arrays that insert ``rows`` in one statement (the async and the synchronous insert
    both send these: a new column is added here, once)."""
    return InsertArrays(
        root_task_id=[r.root_task_id for r in rows],
        root_execution_id=[r.root_execution_id for r in rows],
        parent_task_id=[r.parent_task_id for r in rows],
        parent_execution_id=[r.parent_execution_id for r in rows],
        is_finalize_task=[r.is_finalize_task for r in rows],
        task_id=[r.task_id for r in rows],
        execution_id=[r.execution_id for r in rows],
        retry_options=[r.retry_options for r in rows],
        sleep_ms_before_run=[r.sleep_ms_before_run for r in rows],
        timeout_ms=[r.timeout_ms for r in rows],
        run_input=[r.run_input for r in rows],
        run_output=[r.run_output for r in rows],
        output=[r.output for r in rows],
        children_tasks_completed_count=[r.children_tasks_completed_count for r in rows],
        children_tasks=[r.children_tasks for r in rows],
        children_tasks_errors=[r.children_tasks_errors for r in rows],
        finalize_task=[r.finalize_task for r in rows],
        finalize_task_error=[r.finalize_task_error for r in rows],
        error=[r.error for r in rows],
        status=[r.status for r in rows],
        is_closed=[r.is_closed for r in rows],
        needs_promise_cancellation=[r.needs_promise_cancellation for r in rows],
        retry_attempts=[r.retry_attempts for r in rows],
        lease_expiries=[r.lease_expiries for r in rows],
        start_at=[r.start_at for r in rows],
        started_at=[r.started_at for r in rows],
        finished_at=[r.finished_at for r in rows],
        expires_at=[r.expires_at for r in rows],
        version=[r.version for r in rows],
        created_at=[r.created_at for r in rows],
        updated_at=[r.updated_at for r in rows],
        rerun_of_execution_id=[r.rerun_of_execution_id for r in rows],
        trace_context=[r.trace_context for r in rows],
        queue=[r.queue for r in rows],
        concurrency_key=[r.concurrency_key for r in rows],
        concurrency_limit=[r.concurrency_limit for r in rows],
        idempotency_key=[r.idempotency_key for r in rows],
        priority=[r.priority for r in rows],
    )


async def insert_rows(
    queries: pg.AsyncQueries, conn: Connection, rows: Sequence[Columns]
) -> list[str]:
    """Insert executions; the execution id standing for each row (the storage contract's
    ``insert_task_executions``: a row whose idempotency key is taken is skipped and stands for
    the key's holder).

    The statement skips such rows itself (ON CONFLICT on the key index, waiting for a concurrent
    inserter of the same key to finish), so concurrent enqueues of one key from any number of
    processes store one execution. The holders are read afterwards in the same transaction:
    under READ COMMITTED that read sees a concurrent holder once the insert waited for it.
    ``sync_postgres.insert_rows`` is the same for the synchronous storage.
    """
    outcome = KeyedInsert(rows)
    while outcome.pending:
        batch = outcome.batch()
        outcome.stored(await queries.insert_task_executions(conn, **insert_arrays(batch)))
        if outcome.keyed:
            outcome.holders(
                await queries.get_task_execution_ids_by_idempotency_keys(
                    conn, **outcome.holder_arrays()
                )
            )
    return outcome.resolved()


class HolderArrays(TypedDict):
    """The parameters of ``GetTaskExecutionIdsByIdempotencyKeys``."""

    task_ids: list[str | None]
    idempotency_keys: list[str | None]


class KeyedInsert:
    """Where an insert of ``rows`` stands: which rows are settled (stored, or standing for their
    key's holder) and which must be inserted again (their holder vanished before it was read).

    A keyless row is always stored. A keyed row whose id the insert returned was stored, unless
    another row of the batch has the same id (then the returned id may be that row's): such rows
    and the ones not returned are settled by reading their key's holder.
    """

    def __init__(self, rows: Sequence[Columns]) -> None:
        self._rows = rows
        self._resolved: list[str | None] = [None] * len(rows)
        self.pending = list(range(len(rows)))  # rows to insert (again)
        self.keyed: list[int] = []  # rows whose key holder must be read
        self._attempts = 0

    def batch(self) -> list[Columns]:
        self._attempts += 1
        if self._attempts > _KEY_ATTEMPTS:
            raise StorageError(
                f"Could not store or find the holder of {len(self.pending)} idempotency keys"
                " (their holders were deleted each time right after the insert skipped them);"
                " try again"
            )
        return [self._rows[i] for i in self.pending]

    def stored(self, inserted_ids: Sequence[str]) -> None:
        inserted = set(inserted_ids)
        counts = Counter(self._rows[i].execution_id for i in self.pending)
        self.keyed = []
        for i in self.pending:
            row = self._rows[i]
            if row.idempotency_key is None or (
                row.execution_id in inserted and counts[row.execution_id] == 1
            ):
                self._resolved[i] = row.execution_id
            else:
                self.keyed.append(i)
        self.pending = []

    def holder_arrays(self) -> HolderArrays:
        return HolderArrays(
            task_ids=[self._rows[i].task_id for i in self.keyed],
            idempotency_keys=[self._rows[i].idempotency_key for i in self.keyed],
        )

    def holders(self, found: Sequence[GetTaskExecutionIdsByIdempotencyKeysRow]) -> None:
        by_key = {(h.task_id, h.idempotency_key): h.execution_id for h in found}
        for i in self.keyed:
            row = self._rows[i]
            self._resolved[i] = by_key.get((row.task_id, row.idempotency_key or ""))
        self.pending = [i for i in self.keyed if self._resolved[i] is None]
        self.keyed = []

    def resolved(self) -> list[str]:
        return [execution_id for execution_id in self._resolved if execution_id is not None]


@dataclass
class UpdateEachBatch:
    """The parallel arrays of one UpdateTaskExecutionsEach statement: one element per (update,
    execution id) pair, no execution id twice (a statement updates a row at most once)."""

    item_index: list[int] = field(default_factory=list)
    execution_id: list[str] = field(default_factory=list)
    statuses: list[JsonValue] = field(default_factory=list)
    needs_promise_cancellation: list[bool | None] = field(default_factory=list)
    version: list[int | None] = field(default_factory=list)
    changes: list[ColumnChanges] = field(default_factory=list)
    targets: set[str] = field(default_factory=set)

    def add(
        self,
        index: int,
        where: WhereByExecutionIds,
        execution_ids: list[str],
        changes: ColumnChanges,
    ) -> None:
        statuses: JsonValue = None if where.statuses is None else list(where.statuses)
        for execution_id in execution_ids:
            self.item_index.append(index)
            self.execution_id.append(execution_id)
            self.statuses.append(statuses)
            self.needs_promise_cancellation.append(where.needs_promise_cancellation)
            self.version.append(where.version)
            self.changes.append(changes)
        self.targets.update(execution_ids)


async def run_update_batch(
    queries: pg.AsyncQueries, conn: Connection, batch: UpdateEachBatch, counts: list[int]
) -> None:
    """Run one UpdateTaskExecutionsEach statement; count the rows each update matched."""
    if not batch.item_index:
        return
    ch = batch.changes
    rows = await queries.update_task_executions_each(
        conn,
        item_index=batch.item_index,
        execution_id=batch.execution_id,
        statuses=batch.statuses,
        needs_promise_cancellation=batch.needs_promise_cancellation,
        version=batch.version,
        new_run_output=[c["new_run_output"] for c in ch],
        new_output=[c["new_output"] for c in ch],
        new_children_tasks_completed_count=[c["new_children_tasks_completed_count"] for c in ch],
        new_children_tasks=[c["new_children_tasks"] for c in ch],
        new_children_tasks_errors=[c["new_children_tasks_errors"] for c in ch],
        new_finalize_task=[c["new_finalize_task"] for c in ch],
        new_finalize_task_error=[c["new_finalize_task_error"] for c in ch],
        unset_error=[c["unset_error"] for c in ch],
        new_error=[c["new_error"] for c in ch],
        new_status=[c["new_status"] for c in ch],
        new_is_closed=[c["new_is_closed"] for c in ch],
        new_needs_promise_cancellation=[c["new_needs_promise_cancellation"] for c in ch],
        new_retry_attempts=[c["new_retry_attempts"] for c in ch],
        new_lease_expiries=[c["new_lease_expiries"] for c in ch],
        new_start_at=[c["new_start_at"] for c in ch],
        new_started_at=[c["new_started_at"] for c in ch],
        new_finished_at=[c["new_finished_at"] for c in ch],
        unset_expires_at=[c["unset_expires_at"] for c in ch],
        new_expires_at=[c["new_expires_at"] for c in ch],
        new_version=[c["new_version"] for c in ch],
        new_updated_at=[c["new_updated_at"] for c in ch],
    )
    for item_index in rows:
        counts[item_index] += 1


class CancelArguments(TypedDict):
    """The parameters of ``CancelTaskExecution`` (async and sync storages alike)."""

    error: JsonValue
    needs_promise_cancellation: bool
    now: datetime.datetime
    execution_id: str
    expected_status: str
    expected_version: int


def cancel_arguments(cancel: TaskExecutionCancel) -> CancelArguments:
    return CancelArguments(
        error=error_json(cancel.error),
        needs_promise_cancellation=cancel.needs_promise_cancellation,
        now=utc_ms(cancel.now, "now"),
        execution_id=cancel.execution_id,
        expected_status=cancel.status,
        expected_version=cancel.version,
    )
