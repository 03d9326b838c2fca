"""``cancel_execution(storage, id)``: a handle's cancel for code that has no executor (the CLI)."""

from __future__ import annotations

import asyncio

import pytest

from durable_execution import (
    ChildTask,
    DurableExecutionNotFoundError,
    DurableExecutor,
    InMemoryStorage,
    ParentTaskResult,
    TaskContext,
    cancel_execution,
)

WAIT_MS = 10_000


async def test_cancels_a_ready_execution_once() -> None:
    storage = InMemoryStorage()
    executor = DurableExecutor(storage)  # never started: the execution stays ready

    def identity(ctx: TaskContext, value: int) -> int:
        return value

    task = executor.task(id="idle", timeout_ms=1000, run=identity)
    handle = await executor.enqueue_task(task, 1)

    assert await cancel_execution(storage, handle.execution_id) is True
    execution = await handle.get_execution()
    assert execution.status == "cancelled"
    assert execution.error.error_type == "cancelled"
    assert execution.started_at is None
    # Already finished: nothing changes, and the caller learns it.
    assert await cancel_execution(storage, handle.execution_id) is False
    assert await handle.get_execution() == execution


async def test_an_unknown_id_is_not_found() -> None:
    with pytest.raises(DurableExecutionNotFoundError, match="Execution te_x not found"):
        await cancel_execution(InMemoryStorage(), "te_x")


async def test_stops_a_run_in_an_executor_it_knows_nothing_about() -> None:
    storage = InMemoryStorage()
    started = asyncio.Event()
    stopped = asyncio.Event()
    executor = DurableExecutor(storage, background_process_intra_batch_sleep_ms=20)

    @executor.task(id="long", timeout_ms=30_000)
    async def long(ctx: TaskContext, value: None) -> str:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            stopped.set()
            raise
        return "not cancelled"

    async with executor:
        handle = await executor.enqueue_task(long)
        await asyncio.wait_for(started.wait(), 10)
        # Not through the executor: as another process would, by id, on the storage alone.
        assert await cancel_execution(storage, handle.execution_id) is True
        await asyncio.wait_for(stopped.wait(), 10)  # the executor's watcher stopped the run
        execution = await handle.wait_and_get_finished_execution(
            polling_interval_ms=20, timeout_ms=WAIT_MS
        )
    assert execution.status == "cancelled"


async def test_a_cancelled_parent_gets_its_children_cancelled_by_the_executor() -> None:
    storage = InMemoryStorage()
    executor = DurableExecutor(storage, background_process_intra_batch_sleep_ms=20)
    child_started = asyncio.Event()

    @executor.task(id="child", timeout_ms=30_000)
    async def child(ctx: TaskContext, value: None) -> None:
        child_started.set()
        await asyncio.sleep(30)

    def parent(ctx: TaskContext, value: None) -> ParentTaskResult[None]:
        return ParentTaskResult(output=None, children_tasks=[ChildTask(child, None)])

    parent_task = executor.parent_task(id="parent", timeout_ms=30_000, run_parent=parent)
    async with executor:
        handle = await executor.enqueue_task(parent_task)
        await asyncio.wait_for(child_started.wait(), 10)
        assert await cancel_execution(storage, handle.execution_id) is True
        execution = await handle.wait_and_get_finished_execution(
            polling_interval_ms=20, timeout_ms=WAIT_MS
        )
        assert execution.status == "cancelled"
        assert execution.children_tasks is not None
        child_handle = await executor.get_task_handle(
            child, execution.children_tasks[0].execution_id
        )
        child_execution = await child_handle.wait_and_get_finished_execution(
            polling_interval_ms=20, timeout_ms=WAIT_MS
        )
    assert child_execution.status == "cancelled"
