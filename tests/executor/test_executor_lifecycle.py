"""The executor itself: start, shutdown, registration rules around them, several executors."""

from __future__ import annotations

import asyncio
import time

import pydantic
import pytest

from durable_execution import (
    DurableExecutionError,
    DurableExecutionNotFoundError,
    DurableExecutor,
    ParentTaskResult,
    TaskContext,
)
from durable_execution.storage import DurableStorage

from ._support import MakeExecutor, RunCounter, all_records, wait_completed, wait_finished


def _run(ctx: TaskContext, _: None) -> str:
    return "ok"


def _run_parent(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
    return ParentTaskResult(output=None)


def _assert_shutdown_error(raised: pytest.ExceptionInfo[DurableExecutionError]) -> None:
    assert str(raised.value) == "Executor shutdown"
    assert raised.value.is_retryable is False


async def test_after_shutdown_registration_enqueue_and_start_are_refused(
    make_executor: MakeExecutor,
) -> None:
    executor = await make_executor()
    task = executor.task(id="before", timeout_ms=1000, run=_run)
    await executor.shutdown()

    with pytest.raises(DurableExecutionError) as raised:
        executor.task(id="test", timeout_ms=1000, run=_run)
    _assert_shutdown_error(raised)
    with pytest.raises(DurableExecutionError) as raised:
        executor.parent_task(id="test", timeout_ms=1000, run_parent=_run_parent)
    _assert_shutdown_error(raised)
    with pytest.raises(DurableExecutionError) as raised:
        executor.validate_input(lambda value: value)
    _assert_shutdown_error(raised)
    with pytest.raises(DurableExecutionError) as raised:
        executor.input_schema(pydantic.TypeAdapter(int))
    _assert_shutdown_error(raised)
    with pytest.raises(DurableExecutionError) as raised:
        await executor.enqueue_task(task)
    _assert_shutdown_error(raised)
    with pytest.raises(DurableExecutionError) as raised:
        await executor.start()
    _assert_shutdown_error(raised)


async def test_builders_obtained_before_shutdown_refuse_after_it(
    make_executor: MakeExecutor,
) -> None:
    executor = await make_executor()
    builder = executor.validate_input(lambda value: value)
    await executor.shutdown()
    with pytest.raises(DurableExecutionError) as raised:
        builder.task(id="test", timeout_ms=1000, run=_run)
    _assert_shutdown_error(raised)


async def test_shutdown_waits_for_running_tasks(make_executor: MakeExecutor) -> None:
    executor = await make_executor()
    runs = RunCounter()
    started = asyncio.Event()

    async def run(ctx: TaskContext, _: None) -> str:
        runs.hit("test")
        started.set()
        await asyncio.sleep(0.5)
        return "test cancelled" if ctx.is_shutdown_requested() else "test"

    task = executor.task(id="test", timeout_ms=10_000, run=run)
    handle = await executor.enqueue_task(task)
    await asyncio.wait_for(started.wait(), timeout=10)
    await executor.shutdown()

    # Shutdown returned only after the run wrote its result.
    execution = await handle.get_execution()
    assert execution.status == "completed"
    assert execution.output == "test cancelled"
    assert runs["test"] == 1
    assert executor.get_running_task_execution_ids() == frozenset()


async def test_shutdown_is_idempotent(make_executor: MakeExecutor) -> None:
    executor = await make_executor()
    await asyncio.gather(executor.shutdown(), executor.shutdown())
    await executor.shutdown()


async def test_shutdown_of_a_never_started_executor(make_executor: MakeExecutor) -> None:
    executor = await make_executor(start=False)
    await executor.shutdown()
    with pytest.raises(DurableExecutionError) as raised:
        await executor.start()
    _assert_shutdown_error(raised)


async def test_shutdown_interrupts_idle_sleep(make_executor: MakeExecutor) -> None:
    """Fixed reference weakness: a long idle sleep does not delay shutdown."""
    executor = await make_executor(background_process_intra_batch_sleep_ms=20_000)
    await asyncio.sleep(0.2)  # let every background loop find nothing and go to sleep
    began = time.monotonic()
    await executor.shutdown()
    assert time.monotonic() - began < 2.0


async def test_start_twice_is_harmless(make_executor: MakeExecutor) -> None:
    executor = await make_executor()
    await executor.start()
    runs = RunCounter()

    async def run(ctx: TaskContext, index: int) -> int:
        runs.hit(str(index))
        await asyncio.sleep(0.01)
        return index

    task = executor.task(id="test", timeout_ms=1000, run=run)
    handles = [await executor.enqueue_task(task, i) for i in range(20)]
    for i, handle in enumerate(handles):
        assert (await wait_completed(handle)).output == i
    await asyncio.sleep(0.2)
    assert runs.counts == {str(i): 1 for i in range(20)}
    await executor.shutdown()


async def test_async_with_starts_and_shuts_down(storage: DurableStorage) -> None:
    executor = DurableExecutor(storage, background_process_intra_batch_sleep_ms=50)
    async with executor:
        task = executor.task(id="test", timeout_ms=1000, run=_run)
        execution = await wait_completed(await executor.enqueue_task(task))
        assert execution.output == "ok"
    with pytest.raises(DurableExecutionError) as raised:
        await executor.enqueue_task(task)
    _assert_shutdown_error(raised)


async def test_enqueue_before_start_runs_after_start(
    make_executor: MakeExecutor, storage: DurableStorage
) -> None:
    executor = await make_executor(start=False)
    task = executor.task(id="test", timeout_ms=1000, run=_run)
    handle = await executor.enqueue_task(task)
    await asyncio.sleep(0.2)
    assert (await handle.get_execution()).status == "ready"
    assert [r.status for r in await all_records(storage)] == ["ready"]
    await executor.start()
    execution = await wait_completed(handle)
    assert execution.output == "ok"


async def test_handles_still_work_after_shutdown(make_executor: MakeExecutor) -> None:
    executor = await make_executor()
    task = executor.task(id="test", timeout_ms=1000, run=_run)
    handle = await executor.enqueue_task(task)
    await wait_completed(handle)
    await executor.shutdown()
    again = await executor.get_task_handle(task, handle.execution_id)
    execution = await again.get_execution()
    assert execution.status == "completed"
    finished = await again.wait_and_get_finished_execution(timeout_ms=1000)
    assert finished.status == "completed"
    await again.cancel()  # a no-op on a finished execution, and allowed after shutdown
    assert executor.get_running_task_execution_ids() == frozenset()


async def test_second_executor_without_the_task_refuses_to_enqueue(
    executor: DurableExecutor, make_executor: MakeExecutor
) -> None:
    task = executor.task(id="test", timeout_ms=1000, run=_run)
    other = await make_executor()
    with pytest.raises(DurableExecutionNotFoundError) as raised:
        await other.enqueue_task(task)
    assert str(raised.value).startswith("Task test not found")
    assert raised.value.is_retryable is False


async def test_executors_sharing_a_storage_both_see_executions(
    executor: DurableExecutor, make_executor: MakeExecutor
) -> None:
    other = await make_executor()
    task = executor.task(id="test", timeout_ms=1000, run=_run)
    other_task = other.task(id="test", timeout_ms=1000, run=_run)
    handle = await executor.enqueue_task(task)
    await wait_completed(handle)
    seen_by_other = await other.get_task_handle(other_task, handle.execution_id)
    assert (await seen_by_other.get_execution()).status == "completed"


async def test_concurrency_limit_is_respected(make_executor: MakeExecutor) -> None:
    executor = await make_executor(max_concurrent_task_executions=2)
    running = 0
    most = 0

    async def run(ctx: TaskContext, index: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await asyncio.sleep(0.05)
        finally:
            running -= 1
        return index

    task = executor.task(id="test", timeout_ms=5000, run=run)
    handles = [await executor.enqueue_task(task, i) for i in range(8)]
    outputs = [(await wait_completed(handle)).output for handle in handles]
    assert outputs == list(range(8))
    assert most == 2


async def test_execution_of_a_task_unknown_to_the_claiming_executor_fails(
    make_executor: MakeExecutor,
) -> None:
    registering = await make_executor(start=False)
    task = registering.task(id="test", timeout_ms=1000, run=_run)
    handle = await registering.enqueue_task(task)
    ignorant = await make_executor()  # shares the storage, never registered "test"

    execution = await wait_finished(handle)
    assert execution.status == "failed"
    assert execution.error.error_type == "not_found"
    assert execution.error.message.startswith("Task test not found")
    assert execution.error.is_retryable is False
    assert ignorant.get_running_task_execution_ids() == frozenset()
