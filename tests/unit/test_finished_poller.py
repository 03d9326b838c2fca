"""Waiting handles share their fallback polls instead of reading one row each."""

from __future__ import annotations

import asyncio

from durable_execution import DurableExecutor, ExecutionErrorInfo, TaskContext, clock
from durable_execution.storage import (
    TaskExecutionUpdate,
    WhereByExecutionIds,
)

from ._support import CountingStorage


async def test_many_waiting_handles_cost_a_few_reads_per_polling_interval() -> None:
    storage = CountingStorage()
    # Never started, like a process that only enqueues: it learns of finishes by polling.
    executor = DurableExecutor(storage)

    def run(ctx: TaskContext, _: None) -> str:
        return "unused"

    task = executor.task(id="t", timeout_ms=1000, run=run)
    handles = [await executor.enqueue_task(task) for _ in range(200)]
    waits = [
        asyncio.ensure_future(handle.wait_and_get_finished_execution(polling_interval_ms=50))
        for handle in handles
    ]
    await asyncio.sleep(0.1)  # every handle did its first (full) read
    before = storage.transactions
    await asyncio.sleep(0.5)  # about ten polling intervals with nothing finished
    polls = storage.transactions - before
    # One read per handle per interval would be about 2,000.
    assert polls < 100, polls

    # Another "process" finishes them all: every handle notices through the shared poll.
    now = clock.now()
    async with storage.inner.transaction() as tx:
        await tx.update_task_executions_each(
            [
                (
                    WhereByExecutionIds([handle.execution_id for handle in handles]),
                    TaskExecutionUpdate(
                        updated_at=now,
                        status="failed",
                        error=ExecutionErrorInfo("generic", "failed elsewhere", is_retryable=False),
                        started_at=now,
                        finished_at=now,
                    ),
                )
            ]
        )
    finished = await asyncio.wait_for(asyncio.gather(*waits), 10)
    assert {execution.status for execution in finished} == {"failed"}


async def test_waiting_handles_share_one_poll_timer_per_interval() -> None:
    storage = CountingStorage()
    executor = DurableExecutor(storage)  # never started: only polls can tell it of finishes

    def run(ctx: TaskContext, _: None) -> str:
        return "unused"

    task = executor.task(id="t", timeout_ms=1000, run=run)
    handles = await executor.enqueue_tasks(task, [None] * 50)
    waits = [
        asyncio.ensure_future(handle.wait_and_get_finished_execution(polling_interval_ms=interval))
        for handle, interval in zip(handles, [40, 60] * 25, strict=True)
    ]
    await asyncio.sleep(0.1)
    watched = executor._rt.finished_poller._watched
    # One group (one timer) per polling interval, each watching its 25 executions.
    assert {interval: len(group.by_id) for interval, group in watched.items()} == {
        0.04: 25,
        0.06: 25,
    }

    now = clock.now()
    async with storage.inner.transaction() as tx:
        await tx.update_task_executions_each(
            [
                (
                    WhereByExecutionIds([handle.execution_id for handle in handles]),
                    TaskExecutionUpdate(
                        updated_at=now,
                        status="failed",
                        error=ExecutionErrorInfo("generic", "failed elsewhere", is_retryable=False),
                        started_at=now,
                        finished_at=now,
                    ),
                )
            ]
        )
    await asyncio.wait_for(asyncio.gather(*waits), 10)
    assert watched == {}  # the last wait to end stopped its group's timer
