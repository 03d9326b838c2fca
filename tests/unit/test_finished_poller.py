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
        await tx.update_task_executions(
            WhereByExecutionIds([handle.execution_id for handle in handles]),
            TaskExecutionUpdate(
                updated_at=now,
                status="failed",
                error=ExecutionErrorInfo("generic", "failed elsewhere", is_retryable=False),
                started_at=now,
                finished_at=now,
            ),
        )
    finished = await asyncio.wait_for(asyncio.gather(*waits), 10)
    assert {execution.status for execution in finished} == {"failed"}
