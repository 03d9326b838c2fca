"""Leases: a running execution whose owner vanished is run again, and a stale run cannot win."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from durable_execution import (
    DurableExecutor,
    ExecutionErrorInfo,
    JsonSerializer,
    Task,
    TaskContext,
)
from durable_execution.clock import now
from durable_execution.model import NO_RETRIES
from durable_execution.storage import (
    DurableStorage,
    TaskExecutionRecord,
    TaskExecutionUpdate,
    WhereByExecutionIds,
)

from ._support import MakeExecutor, eventually, get_record, wait_completed

TASK_EXPIRED = ExecutionErrorInfo(error_type="generic", message="Task expired", is_retryable=False)


async def test_orphaned_running_execution_is_recovered(
    make_executor: MakeExecutor, storage: DurableStorage
) -> None:
    """What a crashed executor leaves behind: a row in ``running`` whose lease has passed."""
    claimed_at = now() - timedelta(seconds=10)
    orphan = TaskExecutionRecord(
        task_id="test",
        execution_id="te_CrashedWrkr0123456789ABC",
        retry_options=NO_RETRIES,
        sleep_ms_before_run=0,
        timeout_ms=1000,
        run_input=JsonSerializer().serialize("payload"),
        status="running",
        start_at=claimed_at,
        created_at=claimed_at,
        updated_at=claimed_at,
        started_at=claimed_at,
        expires_at=claimed_at + timedelta(seconds=5),
    )
    async with storage.transaction() as tx:
        await tx.insert_task_executions([orphan])

    seen: list[tuple[int, ExecutionErrorInfo | None]] = []
    executor = await make_executor(start=False)

    def run(ctx: TaskContext, value: str) -> str:
        seen.append((ctx.attempt, ctx.prev_error))
        return f"recovered {value}"

    task = executor.task(id="test", timeout_ms=1000, run=run)
    await executor.start()
    handle = await executor.get_task_handle(task, orphan.execution_id)
    execution = await wait_completed(handle)
    assert execution.output == "recovered payload"
    # Expiry is not a retry: the attempt counter is unchanged; the expiry shows as prev_error.
    assert execution.retry_attempts == 0
    assert seen == [(0, TASK_EXPIRED)]
    assert execution.started_at is not None
    assert execution.started_at > claimed_at


async def test_stale_run_cannot_overwrite_a_newer_attempt(
    make_executor: MakeExecutor, storage: DurableStorage
) -> None:
    """Fixed reference weakness: the result of a run whose lease expired is discarded."""
    release_stale = asyncio.Event()
    release_fresh = asyncio.Event()
    stale_started = asyncio.Event()
    fresh_started = asyncio.Event()
    stale_returned = asyncio.Event()
    attempts: list[tuple[int, ExecutionErrorInfo | None]] = []

    def register(executor: DurableExecutor) -> Task[None, str]:
        async def run(ctx: TaskContext, _: None) -> str:
            attempts.append((ctx.attempt, ctx.prev_error))
            if len(attempts) == 1:
                stale_started.set()
                await release_stale.wait()
                stale_returned.set()
                return "stale"
            fresh_started.set()
            await release_fresh.wait()
            return "fresh"

        return executor.task(id="test", timeout_ms=30_000, run=run)

    # The first executor can hold one run only, so the second one must take the new attempt.
    # Its idle sleep is long so that its own lease check, which runs once at start, does not
    # see the expiry either, and so is its lease, so that no renewal (which would stop the run
    # once it found the row taken) comes during the test: like a paused process, it never
    # learns that its lease is gone.
    first = await make_executor(
        max_concurrent_task_executions=1,
        background_process_intra_batch_sleep_ms=60_000,
        expire_ms=600_000,
        start=False,
    )
    second = await make_executor(start=False)
    task = register(first)
    register(second)
    await first.start()
    handle = await first.enqueue_task(task)
    await asyncio.wait_for(stale_started.wait(), timeout=10)
    await second.start()

    # The lease passes while the first run is still alive (a paused process, say).
    async with storage.transaction() as tx:
        updated = await tx.update_task_executions_each(
            [
                (
                    WhereByExecutionIds(execution_ids=[handle.execution_id]),
                    TaskExecutionUpdate(updated_at=now(), expires_at=now() - timedelta(seconds=1)),
                )
            ]
        )
    assert updated == [1]
    await asyncio.wait_for(fresh_started.wait(), timeout=10)
    assert attempts[1] == (0, TASK_EXPIRED)

    # The stale run finishes first; its result must not land.
    release_stale.set()
    await asyncio.wait_for(stale_returned.wait(), timeout=10)
    await eventually(
        lambda: handle.execution_id not in first.get_running_task_execution_ids(),
        what="stale run finished",
    )
    record = await get_record(storage, handle.execution_id)
    assert record.status == "running"
    assert record.output is None

    release_fresh.set()
    execution = await wait_completed(handle)
    assert execution.output == "fresh"
    assert len(attempts) == 2
