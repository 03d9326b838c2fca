"""Closing finished executions: one parent read per batch, and poison rows do not stall it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

import pytest

from durable_execution import (
    DurableExecutor,
    ParentTaskOutput,
    ParentTaskResult,
    TaskContext,
)
from durable_execution.model import (
    FINISHED_STATUSES,
    ExecutionErrorInfo,
    ParentTaskRef,
    TaskExecutionStatus,
    TaskRef,
)
from durable_execution.payloads import ChildTaskOutput
from durable_execution.serializer import JsonSerializer
from durable_execution.storage import (
    DurableStorageTx,
    InMemoryStorage,
    TaskExecutionCancel,
    TaskExecutionRecord,
    TaskExecutionUpdate,
    WhereByExecutionIds,
)
from durable_execution.storage.types import (
    ClaimedTaskExecutions,
    HeldLease,
    PruneCursor,
    PrunedBatch,
    ScheduleRecord,
    ScheduleTickAdvance,
)

from ._support import make_record

SERIALIZER = JsonSerializer()


class CountingTx:
    """Delegates to a real transaction, counting single-execution reads per id."""

    def __init__(self, inner: DurableStorageTx, reads: Counter[str]) -> None:
        self._inner = inner
        self._reads = reads

    async def insert_task_executions(self, executions: Sequence[TaskExecutionRecord]) -> list[str]:
        return await self._inner.insert_task_executions(executions)

    async def get_task_executions(self, execution_ids: Sequence[str]) -> list[TaskExecutionRecord]:
        if len(execution_ids) == 1:
            self._reads[execution_ids[0]] += 1
        return await self._inner.get_task_executions(execution_ids)

    async def get_finished_task_execution_ids(self, execution_ids: Sequence[str]) -> list[str]:
        return await self._inner.get_finished_task_execution_ids(execution_ids)

    async def get_expired_task_executions(
        self, *, now: datetime, limit: int
    ) -> list[TaskExecutionRecord]:
        return await self._inner.get_expired_task_executions(now=now, limit=limit)

    async def get_finished_unclosed_task_executions(
        self, *, limit: int, execution_ids: Sequence[str] | None = None
    ) -> list[TaskExecutionRecord]:
        return await self._inner.get_finished_unclosed_task_executions(
            limit=limit, execution_ids=execution_ids
        )

    async def get_finished_unclosed_task_execution_ids(self, *, limit: int) -> list[str]:
        return await self._inner.get_finished_unclosed_task_execution_ids(limit=limit)

    async def close_task_executions(self, execution_ids: Sequence[str], *, now: datetime) -> int:
        return await self._inner.close_task_executions(execution_ids, now=now)

    async def postpone_closing_task_executions(
        self, execution_ids: Sequence[str], *, now: datetime
    ) -> int:
        return await self._inner.postpone_closing_task_executions(execution_ids, now=now)

    async def cancel_task_execution(self, cancel: TaskExecutionCancel) -> bool:
        return await self._inner.cancel_task_execution(cancel)

    async def cancel_active_task_executions(
        self,
        execution_ids: Sequence[str],
        *,
        error: ExecutionErrorInfo,
        now: datetime,
        running_here: Collection[str],
    ) -> list[str]:
        return await self._inner.cancel_active_task_executions(
            execution_ids, error=error, now=now, running_here=running_here
        )

    async def take_cancellation_requests(
        self, execution_ids: Sequence[str], *, now: datetime, limit: int
    ) -> list[str]:
        return await self._inner.take_cancellation_requests(execution_ids, now=now, limit=limit)

    async def fail_unreadable_task_execution(
        self, execution_id: str, *, error: ExecutionErrorInfo, now: datetime
    ) -> bool:
        return await self._inner.fail_unreadable_task_execution(execution_id, error=error, now=now)

    async def claim_ready_task_executions(
        self,
        *,
        now: datetime,
        limit: int,
        lease_ms: int,
        queues: Sequence[str] | None = None,
    ) -> ClaimedTaskExecutions:
        return await self._inner.claim_ready_task_executions(
            now=now, limit=limit, lease_ms=lease_ms, queues=queues
        )

    async def renew_task_execution_leases(
        self, leases: Sequence[HeldLease], *, expires_at: datetime
    ) -> list[str]:
        return await self._inner.renew_task_execution_leases(leases, expires_at=expires_at)

    async def try_lock_pruning(self) -> bool:
        return await self._inner.try_lock_pruning()

    async def update_task_executions_each(
        self, updates: Sequence[tuple[WhereByExecutionIds, TaskExecutionUpdate]]
    ) -> list[int]:
        return await self._inner.update_task_executions_each(updates)

    async def register_task_schedules(self, schedules: Sequence[ScheduleRecord]) -> None:
        await self._inner.register_task_schedules(schedules)

    async def get_task_schedules(self, schedule_ids: Sequence[str]) -> list[ScheduleRecord]:
        return await self._inner.get_task_schedules(schedule_ids)

    async def advance_task_schedule(self, advance: ScheduleTickAdvance) -> bool:
        return await self._inner.advance_task_schedule(advance)

    async def prune_batch(
        self,
        *,
        finished_before: datetime,
        statuses: Sequence[TaskExecutionStatus],
        after: PruneCursor | None,
        limit: int,
        dry_run: bool,
    ) -> PrunedBatch:
        return await self._inner.prune_batch(
            finished_before=finished_before,
            statuses=statuses,
            after=after,
            limit=limit,
            dry_run=dry_run,
        )


class CountingStorage:
    def __init__(self) -> None:
        self.inner = InMemoryStorage()
        self.reads: Counter[str] = Counter()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DurableStorageTx]:
        async with self.inner.transaction() as tx:
            yield CountingTx(tx, self.reads)


async def eventually(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition did not hold in time"
        await asyncio.sleep(0.01)


def _finished_child(parent_id: str, index: int, **changes: object) -> TaskExecutionRecord:
    return make_record(
        "child",
        f"te_child{index}",
        status="completed",
        output=SERIALIZER.serialize(index),
        run_output=SERIALIZER.serialize(index),
        parent_task=ParentTaskRef(task_id="parent", execution_id=parent_id),
        root_task=TaskRef(task_id="parent", execution_id=parent_id),
        **changes,
    )


def _register(executor: DurableExecutor) -> None:
    def run_parent(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
        return ParentTaskResult(output=None)

    executor.parent_task(id="parent", timeout_ms=1000, run_parent=run_parent)
    executor.task(id="child", timeout_ms=1000, run=lambda ctx, value: value)


async def test_a_parent_is_read_once_per_closing_batch() -> None:
    storage = CountingStorage()
    children = [_finished_child("te_parent", index) for index in range(250)]
    parent = make_record(
        "parent",
        "te_parent",
        status="waiting_for_children_tasks",
        run_output=SERIALIZER.serialize(None),
        children_tasks=tuple(
            TaskRef(task_id="child", execution_id=child.execution_id) for child in children
        ),
    )
    async with storage.inner.transaction() as tx:
        await tx.insert_task_executions([parent, *children])

    executor = DurableExecutor(storage, background_process_intra_batch_sleep_ms=50)
    _register(executor)
    async with executor:
        await eventually(
            lambda: all(record.is_closed for record in storage.inner.snapshot()),
        )

    stored = storage.inner.snapshot()[0]
    assert stored.status == "completed"
    assert stored.children_tasks_completed_count == 250
    assert stored.output is not None
    assert SERIALIZER.deserialize(stored.output) == ParentTaskOutput(
        output=None,
        children_tasks_outputs=[
            ChildTaskOutput(index=i, task_id="child", execution_id=f"te_child{i}", output=i)
            for i in range(250)
        ],
    )
    # 250 children closed in batches of 100: three reads of the parent, not 250.
    assert storage.reads["te_parent"] == 3


async def test_a_poison_row_is_closed_without_stalling_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    storage = InMemoryStorage()
    # The parent's run output cannot be deserialized, so completing it from its last child fails.
    parent = make_record(
        "parent",
        "te_parent",
        status="waiting_for_children_tasks",
        run_output="{not json",
        children_tasks=(TaskRef(task_id="child", execution_id="te_child0"),),
    )
    poison = _finished_child("te_parent", 0)
    healthy = [make_record("child", f"te_ok{i}", status="completed", output="1") for i in range(3)]
    async with storage.transaction() as tx:
        await tx.insert_task_executions([parent, poison, *healthy])

    executor = DurableExecutor(storage, background_process_intra_batch_sleep_ms=50)
    _register(executor)
    with caplog.at_level(logging.ERROR, logger="durable_execution"):
        async with executor:
            await eventually(
                lambda: all(
                    record.is_closed
                    for record in storage.snapshot()
                    if record.status in FINISHED_STATUSES
                )
            )
    by_id = {record.execution_id: record for record in storage.snapshot()}
    assert by_id["te_parent"].status == "waiting_for_children_tasks"  # its effect was dropped
    assert all(by_id[f"te_ok{i}"].is_closed for i in range(3))
    assert any("Cannot close execution te_child0" in message for message in caplog.messages)
