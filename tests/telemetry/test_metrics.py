"""Metrics (issue 15): executions by final status, attempt duration, queue lag, claim batch size
and lease expiries, read back from the SDK's in-memory metric reader."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from opentelemetry.sdk.metrics.export import HistogramDataPoint, NumberDataPoint

from durable_execution import DurableExecutionError, DurableExecutor, TaskContext, clock
from durable_execution.ids import generate_execution_id
from durable_execution.model import RetryOptions
from durable_execution.storage import DurableStorage, TaskExecutionRecord

from ._providers import get_record, points, unique_task_id, wait_finished


def counted(name: str, **attributes: str) -> int:
    return sum(int(p.value) for p in points(name, **attributes) if isinstance(p, NumberDataPoint))


def histogram(name: str, **attributes: str) -> HistogramDataPoint:
    [point] = [p for p in points(name, **attributes) if isinstance(p, HistogramDataPoint)]
    return point


async def test_executions_attempts_lag_and_claims_are_measured(executor: DurableExecutor) -> None:
    ok_id, bad_id = unique_task_id("ok"), unique_task_id("bad")

    @executor.task(id=ok_id, timeout_ms=10_000)
    async def ok(ctx: TaskContext, value: int) -> int:
        await asyncio.sleep(0.05)
        return value

    @executor.task(id=bad_id, timeout_ms=10_000, retry_options=RetryOptions(max_attempts=1))
    async def bad(ctx: TaskContext, value: int) -> int:
        raise DurableExecutionError("no")

    claims_before = sum(
        p.count
        for p in points("durable_execution.claim.batch_size")
        if isinstance(p, HistogramDataPoint)
    )
    # Enqueued before the executor starts: they wait, and their lag from due to claim shows.
    handles = await executor.enqueue_tasks(ok, [1, 2])
    failing = await executor.enqueue_task(bad, 1)
    await asyncio.sleep(0.2)
    await executor.start()
    for handle in handles:
        await wait_finished(handle)
    assert (await wait_finished(failing)).status == "failed"

    assert counted("durable_execution.executions", **{"durable_execution.task_id": ok_id}) == 2
    assert (
        counted(
            "durable_execution.executions",
            **{"durable_execution.task_id": ok_id, "durable_execution.status": "completed"},
        )
        == 2
    )
    assert (
        counted(
            "durable_execution.executions",
            **{"durable_execution.task_id": bad_id, "durable_execution.status": "failed"},
        )
        == 1
    )
    durations = histogram(
        "durable_execution.attempt.duration",
        **{"durable_execution.task_id": ok_id, "durable_execution.status": "completed"},
    )
    assert durations.count == 2
    assert durations.min >= 0.04  # each attempt slept 50 ms
    retried = histogram(
        "durable_execution.attempt.duration",
        **{"durable_execution.task_id": bad_id, "durable_execution.status": "ready"},
    )
    assert retried.count == 1  # the first attempt, to be retried; the second one failed
    lag = histogram("durable_execution.queue.lag", **{"durable_execution.task_id": ok_id})
    assert lag.count == 2
    assert lag.min >= 0.15  # they were due 200 ms before the executor started
    claims_after = sum(
        p.count
        for p in points("durable_execution.claim.batch_size")
        if isinstance(p, HistogramDataPoint)
    )
    assert claims_after > claims_before


async def test_an_expired_lease_is_counted(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    task_id = unique_task_id("expiring")

    @executor.task(id=task_id, timeout_ms=10_000)
    async def expiring(ctx: TaskContext, value: int) -> int:
        return value

    # A row left running by an executor that died: its lease ran out a minute ago.
    now = clock.now()
    execution_id = generate_execution_id()
    async with storage.transaction() as tx:
        await tx.insert_task_executions(
            [
                TaskExecutionRecord(
                    task_id=task_id,
                    execution_id=execution_id,
                    retry_options=RetryOptions(max_attempts=0),
                    sleep_ms_before_run=0,
                    timeout_ms=10_000,
                    run_input="1",
                    status="running",
                    start_at=now - timedelta(minutes=2),
                    started_at=now - timedelta(minutes=2),
                    expires_at=now - timedelta(minutes=1),
                    created_at=now - timedelta(minutes=2),
                    updated_at=now - timedelta(minutes=2),
                    version=1,
                )
            ]
        )
    await executor.start()
    handle = await executor.get_task_handle(expiring, execution_id)
    assert (await wait_finished(handle)).status == "completed"
    assert (await get_record(storage, handle.execution_id)).lease_expiries == 1
    assert (
        counted("durable_execution.lease_expiries", **{"durable_execution.task_id": task_id}) == 1
    )
