"""Task handles: lookup by id, reading, waiting with a deadline, cancelling the wait."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from durable_execution import (
    DurableExecutionNotFoundError,
    DurableExecutionTimedOutError,
    DurableExecutor,
    TaskContext,
)

from ._support import MakeExecutor, assert_utc, wait_completed


async def test_handle_of_unregistered_task_is_refused(
    executor: DurableExecutor, make_executor: MakeExecutor
) -> None:
    elsewhere = await make_executor(start=False)

    def run(ctx: TaskContext, _: None) -> None:
        return None

    invalid = elsewhere.task(id="invalid", timeout_ms=1000, run=run)
    with pytest.raises(DurableExecutionNotFoundError) as raised:
        await executor.get_task_handle(invalid, "te_whatever")
    assert str(raised.value).startswith("Task invalid not found")


async def test_handle_of_unknown_execution_is_refused(executor: DurableExecutor) -> None:
    def run(ctx: TaskContext, _: None) -> None:
        return None

    task = executor.task(id="test", timeout_ms=1000, run=run)
    with pytest.raises(DurableExecutionNotFoundError) as raised:
        await executor.get_task_handle(task, "invalid")
    assert str(raised.value) == "Execution invalid not found"
    assert raised.value.is_retryable is False


async def test_handle_checks_the_task_of_the_execution(executor: DurableExecutor) -> None:
    """Fixed reference bug: a handle cannot pair an execution with another task."""

    def run(ctx: TaskContext, _: None) -> str:
        return "ok"

    first = executor.task(id="first", timeout_ms=1000, run=run)
    second = executor.task(id="second", timeout_ms=1000, run=run)
    handle = await executor.enqueue_task(first)
    with pytest.raises(DurableExecutionNotFoundError) as raised:
        await executor.get_task_handle(second, handle.execution_id)
    assert str(raised.value) == (
        f"Execution {handle.execution_id} belongs to task first, not second"
    )


async def test_handle_by_id_sees_a_running_execution(executor: DurableExecutor) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def run(ctx: TaskContext, _: None) -> str:
        started.set()
        await release.wait()
        return "done"

    task = executor.task(id="test", timeout_ms=5000, run=run)
    enqueued = await executor.enqueue_task(task)
    await asyncio.wait_for(started.wait(), timeout=10)

    handle = await executor.get_task_handle(task, enqueued.execution_id)
    assert handle.task_id == "test"
    assert handle.execution_id == enqueued.execution_id
    execution = await handle.get_execution()
    assert execution.status == "running"
    started_at = assert_utc(execution.started_at)
    expires_at = assert_utc(execution.expires_at)
    # The lease is expire_ms (30 s by default) from its last renewal, whatever the timeout.
    assert started_at < expires_at <= datetime.now(UTC) + timedelta(seconds=30)
    assert handle.execution_id in executor.get_running_task_execution_ids()

    release.set()
    completed = await wait_completed(handle)
    assert completed.output == "done"
    assert completed.started_at == started_at


async def test_wait_times_out(executor: DurableExecutor) -> None:
    release = asyncio.Event()

    async def run(ctx: TaskContext, _: None) -> str:
        await release.wait()
        return "done"

    task = executor.task(id="test", timeout_ms=5000, run=run)
    handle = await executor.enqueue_task(task)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(DurableExecutionTimedOutError) as raised:
        await handle.wait_and_get_finished_execution(polling_interval_ms=20, timeout_ms=200)
    assert loop.time() - began >= 0.19
    assert str(raised.value) == f"Timed out waiting for execution {handle.execution_id} to finish"

    # Timing out the wait does not touch the execution.
    release.set()
    execution = await wait_completed(handle)
    assert execution.output == "done"


async def test_wait_with_generous_timeout_returns(executor: DurableExecutor) -> None:
    async def run(ctx: TaskContext, _: None) -> str:
        await asyncio.sleep(0.1)
        return "done"

    task = executor.task(id="test", timeout_ms=5000, run=run)
    handle = await executor.enqueue_task(task)
    execution = await handle.wait_and_get_finished_execution(timeout_ms=10_000)
    assert execution.status == "completed"
    assert execution.output == "done"


async def test_cancelling_the_wait_leaves_the_execution_alone(executor: DurableExecutor) -> None:
    release = asyncio.Event()

    async def run(ctx: TaskContext, _: None) -> str:
        await release.wait()
        return "done"

    task = executor.task(id="test", timeout_ms=5000, run=run)
    handle = await executor.enqueue_task(task)
    waiter = asyncio.create_task(handle.wait_and_get_finished_execution(polling_interval_ms=20))
    await asyncio.sleep(0.1)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert (await handle.get_execution()).status in ("ready", "running")

    release.set()
    execution = await wait_completed(handle)
    assert execution.output == "done"


async def test_wait_on_an_already_finished_execution_returns_at_once(
    executor: DurableExecutor,
) -> None:
    def run(ctx: TaskContext, _: None) -> str:
        return "done"

    task = executor.task(id="test", timeout_ms=1000, run=run)
    handle = await executor.enqueue_task(task)
    await wait_completed(handle)
    loop = asyncio.get_running_loop()
    began = loop.time()
    execution = await handle.wait_and_get_finished_execution(polling_interval_ms=5000)
    assert execution.status == "completed"
    assert loop.time() - began < 2.0  # the first read is immediate, not after one interval
