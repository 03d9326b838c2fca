"""PostgreSQL statements that bind a whole batch: records and updates as one array per column.

The insert and the batched guarded update send every column as an array (``unnest`` in the
SQL), so a batch of any size is one statement and one round trip (two when some record's
idempotency key was taken: the holders are then read, see :func:`insert_rows`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from durable_execution.generated import postgresql as pg
from durable_execution.storage._pg_pool import Connection
from durable_execution.storage.conversion import ColumnChanges, Columns, JsonValue
from durable_execution.storage.errors import StorageError
from durable_execution.storage.types import WhereByExecutionIds

# How often an insert is retried for records whose key holder vanished between the insert that
# skipped them and the read of their holders (a prune deleted it: the key is free again).
_KEY_ATTEMPTS: Final = 3


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
    """
    resolved: list[str | None] = [None] * len(rows)
    pending = list(range(len(rows)))
    for _ in range(_KEY_ATTEMPTS):
        batch = [rows[i] for i in pending]
        inserted = set(await _insert(queries, conn, batch))
        pending = _resolve(rows, pending, inserted, resolved)
        keyed = [i for i in pending if resolved[i] is None]
        if keyed:
            holders = await queries.get_task_execution_ids_by_idempotency_keys(
                conn,
                task_ids=[rows[i].task_id for i in keyed],
                idempotency_keys=[rows[i].idempotency_key for i in keyed],
            )
            by_key = {(h.task_id, h.idempotency_key): h.execution_id for h in holders}
            for i in keyed:
                resolved[i] = by_key.get((rows[i].task_id, rows[i].idempotency_key or ""))
        pending = [i for i in pending if resolved[i] is None]
        if not pending:
            return [execution_id for execution_id in resolved if execution_id is not None]
    raise StorageError(
        f"Could not store or find the holder of {len(pending)} idempotency keys (their holders"
        " were deleted each time right after the insert skipped them); try again"
    )


def _resolve(
    rows: Sequence[Columns], pending: list[int], inserted: set[str], resolved: list[str | None]
) -> list[int]:
    """Settle the rows of ``pending`` that the insert certainly stored; the rest are returned.

    A keyless row is always stored. A keyed row whose id the insert returned was stored, unless
    another row of the batch has the same id (then the returned id may be that row's): such rows
    and the ones not returned are settled by reading their key's holder.
    """
    counts = Counter(rows[i].execution_id for i in pending)
    unsettled: list[int] = []
    for i in pending:
        row = rows[i]
        if row.idempotency_key is None or (
            row.execution_id in inserted and counts[row.execution_id] == 1
        ):
            resolved[i] = row.execution_id
        else:
            unsettled.append(i)
    return unsettled


async def _insert(queries: pg.AsyncQueries, conn: Connection, rows: Sequence[Columns]) -> list[str]:
    """One InsertTaskExecutions statement: one array per column, one element per row; the ids
    of the rows it stored."""
    return await queries.insert_task_executions(
        conn,
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
        idempotency_key=[r.idempotency_key for r in rows],
        priority=[r.priority for r in rows],
    )


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
