"""Closing finished executions: applying each one's effect on its parent and on its descendants.

A batch claims up to ``batch_size`` finished, unclosed rows (oldest ``updated_at`` first, skipping
locked rows) and, in one transaction:

1. groups them by parent, so that each parent is read and written once per batch — not once per
   child, which made a 1000-child parent quadratic in the reference. The parent write is guarded
   by the status and version read; on a conflict (another executor closed a sibling) the parent
   is re-read and the batch's children re-applied;
2. marks them closed;
3. cancels the active children *and* the finalize execution of every row that did not complete.

A parent that already finished keeps its ``finished_at``; late failures of its children are still
appended to ``children_tasks_errors`` (as in the reference).

A row whose parent's task is not registered here is left unclosed and its ``updated_at`` bumped,
so that an executor that knows the task can close it and the oldest-first order moves on.

If a batch fails with a non-transient error (a poison row, e.g. one that cannot be
deserialized), the rows are retried one per transaction, and a row that still fails that way is
marked closed without its effects and logged, so one bad row cannot stall the pipeline; if the
row that cannot be read is its parent, that parent is quarantined (failed, see ``_quarantine``).
Transient errors (see ``_transactions``) are left to the loop's backoff instead: closing a row
without its effects is only acceptable when retrying cannot help.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from durable_execution import clock
from durable_execution._options import resolve_enqueue_options
from durable_execution._quarantine import quarantine, quarantine_error
from durable_execution._records import (
    descendant_links,
    new_record,
    parent_error,
    parent_failed_error,
)
from durable_execution._runtime import Runtime
from durable_execution._telemetry import execution_finished
from durable_execution._transactions import is_transient
from durable_execution.errors import DurableExecutionError
from durable_execution.ids import generate_execution_id
from durable_execution.logs import execution_extra
from durable_execution.model import (
    FINISHED_STATUSES,
    ChildTaskError,
    ExecutionErrorInfo,
    TaskExecutionStatus,
    TaskRef,
)
from durable_execution.payloads import ChildTaskOutput, FinalizeTaskInput, ParentTaskOutput
from durable_execution.storage.errors import MalformedRowError
from durable_execution.storage.types import (
    DurableStorageTx,
    TaskExecutionRecord,
    TaskExecutionUpdate,
    WhereByExecutionIds,
)
from durable_execution.tasks import TaskDefinition

_MAX_PARENT_CONFLICTS = 10


@dataclass(slots=True)
class _BatchResult:
    read: int = 0  # finished rows the batch read (closed or deferred)
    closed: int = 0
    finished: list[str] = field(default_factory=list)
    cancelled_locally_running: list[str] = field(default_factory=list)
    inserted_start_ats: list[datetime] = field(default_factory=list)
    # Parents this batch finished (as read before the write), with their new status.
    parents_finished: list[tuple[TaskExecutionRecord, TaskExecutionStatus]] = field(
        default_factory=list
    )


@dataclass(slots=True)
class _ParentDraft:
    """A parent's fields as the children of this batch change them."""

    status: TaskExecutionStatus
    completed_count: int
    errors: list[ChildTaskError]
    changed: bool = False
    finished_at: datetime | None = None
    output: str | None = None
    unset_error: bool = False
    finalize_task: TaskRef | None = None
    finalize_task_error: ExecutionErrorInfo | None = None
    errors_changed: bool = False


class Closer:
    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    async def batch(self) -> bool:
        rt = self._rt
        try:
            result = await rt.transactions.run(lambda tx: self._close(tx, None))
        except Exception as error:
            if is_transient(error):
                raise  # the storage is in trouble: let the loop back off and try again later
            rt.logger.exception("Closing a batch failed; closing its rows one by one")
            result = await self._close_one_by_one()
        self._after_commit(result)
        # A short batch read every finished row there was: the next waits for a wake-up.
        return result.read >= rt.config.batch_size

    def _after_commit(self, result: _BatchResult) -> None:
        rt = self._rt
        if result.finished:
            rt.executions_finished(result.finished)
        for execution_id in result.cancelled_locally_running:
            local_run = rt.running.get(execution_id)
            if local_run is not None:
                local_run.request_cancel()
        if result.inserted_start_ats:
            rt.wake_ready_at(result.inserted_start_ats)
        for parent, status in result.parents_finished:
            execution_finished(parent.task_id, status)
            rt.logger.info(
                "Parent execution %s of task %s finished: %s",
                parent.execution_id,
                parent.task_id,
                status,
                extra=execution_extra(
                    parent.execution_id, parent.task_id, parent.retry_attempts, status
                ),
            )

    async def _close_one_by_one(self) -> _BatchResult:
        rt = self._rt

        async def pending(tx: DurableStorageTx) -> list[str]:
            return await tx.get_finished_unclosed_task_execution_ids(limit=rt.config.batch_size)

        ids = await rt.transactions.run(pending)
        total = _BatchResult(read=len(ids))
        for execution_id in ids:
            try:
                result = await rt.transactions.run(partial(self._close, only_ids=[execution_id]))
            except Exception as error:
                if is_transient(error):
                    raise
                rt.logger.exception(
                    "Cannot close execution %s; marking it closed without applying its effects",
                    execution_id,
                )
                if isinstance(error, MalformedRowError) and error.execution_id != execution_id:
                    # A poison relative (its parent): fail that one too, or it would wait forever.
                    poison = error
                    if await rt.transactions.run(
                        partial(quarantine, error=poison, now=clock.now())
                    ):
                        rt.logger.error("Poison row quarantined: %s", quarantine_error(poison))
                        total.finished.append(poison.execution_id)
                await rt.transactions.run(partial(_mark_closed, execution_ids=[execution_id]))
                total.closed += 1
                continue
            total.closed += result.closed
            total.finished += result.finished
            total.cancelled_locally_running += result.cancelled_locally_running
            total.inserted_start_ats += result.inserted_start_ats
            total.parents_finished += result.parents_finished
        return total

    async def _close(self, tx: DurableStorageTx, only_ids: list[str] | None) -> _BatchResult:
        rt = self._rt
        now = clock.now()
        result = _BatchResult()
        rows = await tx.get_finished_unclosed_task_executions(
            limit=rt.config.batch_size if only_ids is None else max(1, len(only_ids)),
            execution_ids=only_ids,
        )
        if not rows:
            return result
        result.read = len(rows)

        by_parent: dict[str, list[TaskExecutionRecord]] = {}
        for row in rows:
            if row.parent_task is not None:
                by_parent.setdefault(row.parent_task.execution_id, []).append(row)
        # One read for every parent of the batch; _propagate re-reads only on a conflict.
        parents = {
            parent.execution_id: parent for parent in await tx.get_task_executions(list(by_parent))
        }
        deferred: set[str] = set()
        for parent_id, children in by_parent.items():
            known = parents.get(parent_id)
            if not await self._propagate(tx, parent_id, children, now, result, known):
                deferred.update(child.execution_id for child in children)

        closing = [row for row in rows if row.execution_id not in deferred]
        await _mark_closed(tx, [row.execution_id for row in closing], now)
        result.closed = len(closing)
        for row in closing:
            if row.status != "completed":
                await self._cancel_descendants(tx, row, now, result)
        if deferred:
            await tx.postpone_closing_task_executions(sorted(deferred), now=now)
        return result

    async def _cancel_descendants(
        self, tx: DurableStorageTx, row: TaskExecutionRecord, now: datetime, result: _BatchResult
    ) -> None:
        targets = [child.execution_id for child in row.children_tasks or ()]
        if row.finalize_task is not None:
            targets.append(row.finalize_task.execution_id)
        if not targets:
            return
        # Runs of this process are stopped right after the commit: nobody else needs the flag.
        running_here = [
            execution_id for execution_id in targets if execution_id in self._rt.running
        ]
        cancelled = await tx.cancel_active_task_executions(
            targets, error=parent_failed_error(row), now=now, running_here=running_here
        )
        result.finished.extend(cancelled)
        result.cancelled_locally_running.extend(
            execution_id for execution_id in cancelled if execution_id in running_here
        )

    async def _propagate(
        self,
        tx: DurableStorageTx,
        parent_id: str,
        children: list[TaskExecutionRecord],
        now: datetime,
        result: _BatchResult,
        known: TaskExecutionRecord | None = None,
    ) -> bool:
        """Apply ``children``'s effects to their parent; False to defer them (unknown task).

        ``known`` is the parent as this transaction already read it, if it did."""
        rt = self._rt
        for _ in range(_MAX_PARENT_CONFLICTS):
            if known is not None:
                parents, known = [known], None
            else:
                parents = await tx.get_task_executions([parent_id])
            if not parents:
                rt.logger.error(
                    "Parent execution %s of %s not found; closing them without propagation",
                    parent_id,
                    ", ".join(child.execution_id for child in children),
                )
                return True
            parent = parents[0]
            definition = rt.registry.get(parent.task_id)
            if definition is None:
                rt.logger.warning(
                    "Task %s of parent execution %s is not registered here; leaving its children"
                    " for an executor that knows it",
                    parent.task_id,
                    parent_id,
                )
                return False
            draft = self._apply_children(parent, children, now)
            inserts: list[TaskExecutionRecord] = []
            if draft.status == "waiting_for_children_tasks" and draft.completed_count >= len(
                parent.children_tasks or ()
            ):
                inserts = await self._all_children_completed(tx, parent, definition, draft, now)
            if not draft.changed:
                return True
            guard = WhereByExecutionIds(
                [parent_id], statuses=[parent.status], version=parent.version
            )
            [matched] = await tx.update_task_executions_each(
                [(guard, _draft_update(draft, now, parent.version + 1))]
            )
            if matched:
                if inserts:
                    await tx.insert_task_executions(inserts)
                    result.inserted_start_ats.extend(record.start_at for record in inserts)
                if draft.status in FINISHED_STATUSES and parent.status not in FINISHED_STATUSES:
                    result.finished.append(parent_id)
                    result.parents_finished.append((parent, draft.status))
                return True
        raise DurableExecutionError(
            f"Gave up updating parent execution {parent_id} after {_MAX_PARENT_CONFLICTS}"
            " version conflicts",
            is_retryable=True,
        )

    def _apply_children(
        self, parent: TaskExecutionRecord, children: Sequence[TaskExecutionRecord], now: datetime
    ) -> _ParentDraft:
        draft = _ParentDraft(
            status=parent.status,
            completed_count=parent.children_tasks_completed_count,
            errors=list(parent.children_tasks_errors or ()),
        )
        index_of: dict[str, int] | None = None
        for child in children:
            assert child.parent_task is not None
            if child.parent_task.is_finalize_task:
                _apply_finalize(draft, child, now)
                continue
            if index_of is None:
                index_of = {
                    ref.execution_id: index for index, ref in enumerate(parent.children_tasks or ())
                }
            index = index_of.get(child.execution_id)
            if index is None:
                self._rt.logger.error(
                    "Execution %s is not among the children of its parent %s",
                    child.execution_id,
                    parent.execution_id,
                )
                continue
            draft.changed = True
            if child.status == "completed":
                draft.completed_count += 1
                continue
            draft.errors.append(
                ChildTaskError(
                    index=index,
                    task_id=child.task_id,
                    execution_id=child.execution_id,
                    error=parent_error(child),
                )
            )
            draft.errors_changed = True
            if draft.status == "waiting_for_children_tasks":
                draft.status = "children_tasks_failed"
                draft.finished_at = now
        return draft

    async def _all_children_completed(
        self,
        tx: DurableStorageTx,
        parent: TaskExecutionRecord,
        definition: TaskDefinition,
        draft: _ParentDraft,
        now: datetime,
    ) -> list[TaskExecutionRecord]:
        """Finish the parent (or start its finalize task) from its children's outputs."""
        serializer = self._rt.serializer
        refs = parent.children_tasks or ()
        rows = await tx.get_task_executions([ref.execution_id for ref in refs])
        by_id = {row.execution_id: row for row in rows}
        outputs: list[ChildTaskOutput] = []
        for index, ref in enumerate(refs):
            row = by_id.get(ref.execution_id)
            if row is None or row.status != "completed" or row.output is None:
                raise DurableExecutionError(
                    f"Parent execution {parent.execution_id} counts child {ref.execution_id} as"
                    " completed, but it is not",
                    is_retryable=False,
                )
            outputs.append(
                ChildTaskOutput(
                    index=index,
                    task_id=ref.task_id,
                    execution_id=ref.execution_id,
                    output=serializer.deserialize(row.output),
                )
            )
        run_output = (
            None if parent.run_output is None else serializer.deserialize(parent.run_output)
        )
        draft.changed = True
        draft.unset_error = True
        finalize = definition.finalize
        if finalize is None:
            draft.status = "completed"
            draft.finished_at = now
            draft.output = serializer.serialize(
                ParentTaskOutput(output=run_output, children_tasks_outputs=outputs)
            )
            return []
        root, parent_ref = descendant_links(parent, finalize=True)
        record = new_record(
            task_id=finalize.id,
            execution_id=generate_execution_id(),
            options=resolve_enqueue_options(finalize, None, default_priority=parent.priority),
            run_input=serializer.serialize(
                FinalizeTaskInput(
                    input=serializer.deserialize(parent.run_input),
                    output=run_output,
                    children_tasks_outputs=outputs,
                )
            ),
            now=now,
            root_task=root,
            parent_task=parent_ref,
            # Made after the parent's attempt ended: it joins the parent's trace where it began.
            trace_context=parent.trace_context,
        )
        draft.status = "waiting_for_finalize_task"
        draft.finalize_task = TaskRef(task_id=finalize.id, execution_id=record.execution_id)
        return [record]


def _apply_finalize(draft: _ParentDraft, child: TaskExecutionRecord, now: datetime) -> None:
    if child.status == "completed":
        if draft.status == "waiting_for_finalize_task":
            draft.changed = True
            draft.status = "completed"
            draft.output = child.output
            draft.unset_error = True
            draft.finished_at = now
        return
    draft.changed = True
    draft.finalize_task_error = parent_error(child)
    if draft.status == "waiting_for_finalize_task":
        draft.status = "finalize_task_failed"
        draft.finished_at = now


def _draft_update(draft: _ParentDraft, now: datetime, version: int) -> TaskExecutionUpdate:
    return TaskExecutionUpdate(
        updated_at=now,
        status=draft.status,
        children_tasks_completed_count=draft.completed_count,
        children_tasks_errors=tuple(draft.errors) if draft.errors_changed else None,
        output=draft.output,
        unset_error=draft.unset_error,
        finished_at=draft.finished_at,
        finalize_task=draft.finalize_task,
        finalize_task_error=draft.finalize_task_error,
        version=version,
    )


async def _mark_closed(
    tx: DurableStorageTx, execution_ids: list[str], now: datetime | None = None
) -> None:
    if execution_ids:
        await tx.close_task_executions(execution_ids, now=now or clock.now())
