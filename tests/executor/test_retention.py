"""Automatic retention: executors started with ``retention=`` prune old finished trees.

Two executors share each storage (memory, SQLite, PostgreSQL), both with a one-second retention
(their prune loops then run about every second). Finished trees — a plain task and a parent with
its children and finalize — disappear once older than the bound; an execution that is still
running, and the parent waiting for it, never do, however old their tree's other rows are.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

import pytest
from tests._stored import all_ids

from durable_execution import (
    ChildTask,
    DurableExecutor,
    ParentTaskOutput,
    ParentTaskResult,
    Task,
    TaskContext,
)
from durable_execution._retention_loop import retention_interval
from durable_execution.storage import DurableStorage

from ._support import MakeExecutor, eventually, wait_completed

RETENTION = timedelta(seconds=1)


async def _stored_ids(storage: DurableStorage) -> set[str]:
    return set(await all_ids(storage))


@dataclass
class _Tasks:
    quick: Task[int, int]
    blocked: Task[int, int]
    parent: Task[int, ParentTaskOutput[None]]
    waiting_parent: Task[None, ParentTaskOutput[None]]


def _register(executor: DurableExecutor, release: asyncio.Event) -> _Tasks:
    async def quick(ctx: TaskContext, value: int) -> int:
        return value

    async def blocked(ctx: TaskContext, value: int) -> int:
        await release.wait()
        return value

    quick_task = executor.task(id="quick", timeout_ms=30_000, run=quick)
    blocked_task = executor.task(id="blocked", timeout_ms=30_000, run=blocked)

    def parent(ctx: TaskContext, count: int) -> ParentTaskResult[None]:
        return ParentTaskResult(
            output=None, children_tasks=[ChildTask(quick_task, i) for i in range(count)]
        )

    def waiting_parent(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
        return ParentTaskResult(output=None, children_tasks=[ChildTask(blocked_task, 0)])

    return _Tasks(
        quick=quick_task,
        blocked=blocked_task,
        parent=executor.parent_task(id="parent", timeout_ms=30_000, run_parent=parent),
        waiting_parent=executor.parent_task(
            id="waiting", timeout_ms=30_000, run_parent=waiting_parent
        ),
    )


async def test_two_executors_prune_finished_trees_and_never_an_active_one(
    storage: DurableStorage, make_executor: MakeExecutor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="durable_execution")
    release = asyncio.Event()
    executors = [await make_executor(start=False, retention=RETENTION) for _ in range(2)]
    tasks, _ = (_register(executor, release) for executor in executors)
    for executor in executors:
        await executor.start()
    first = executors[0]
    # Active: a parent whose child runs until released (a tree that must stay whole, whatever
    # the age of its rows) and a top-level task that runs until released.
    waiting = await first.enqueue_task(tasks.waiting_parent, None)
    blocked = await first.enqueue_task(tasks.blocked, 7)
    done = [await first.enqueue_task(tasks.quick, i) for i in range(5)]
    parent = await first.enqueue_task(tasks.parent, 3)
    for handle in done:
        await wait_completed(handle)
    await wait_completed(parent)
    finished_ids = {handle.execution_id for handle in [*done, parent]}
    active_ids = {waiting.execution_id, blocked.execution_id}
    assert finished_ids | active_ids <= await _stored_ids(storage)

    async def finished_trees_pruned() -> bool:
        # The parent's three children go with it: only the active trees' rows remain.
        return len(await _stored_ids(storage)) == 3

    await eventually(finished_trees_pruned, timeout_s=30, what="finished trees pruned")
    assert active_ids <= await _stored_ids(storage)
    assert "Retention pruned" in caplog.text

    release.set()
    await wait_completed(blocked)
    await wait_completed(waiting)

    async def everything_pruned() -> bool:
        return not await _stored_ids(storage)

    await eventually(everything_pruned, timeout_s=30, what="the rest pruned once finished")


async def test_without_retention_nothing_is_pruned(
    storage: DurableStorage, make_executor: MakeExecutor
) -> None:
    executor = await make_executor(start=False)

    async def quick(ctx: TaskContext, value: int) -> int:
        return value

    task = executor.task(id="quick", timeout_ms=30_000, run=quick)
    await executor.start()
    handle = await executor.enqueue_task(task, 1)
    await wait_completed(handle)
    await asyncio.sleep(2.5)  # longer than a one-second retention's first run would take
    assert handle.execution_id in await _stored_ids(storage)


@pytest.mark.parametrize("retention", [timedelta(0), timedelta(seconds=-1), 7, "7d"])
def test_a_bad_retention_is_refused(retention: object) -> None:
    from durable_execution.storage import InMemoryStorage

    with pytest.raises(ValueError, match="retention"):
        DurableExecutor(InMemoryStorage(), retention=retention)  # type: ignore[arg-type]


def test_the_interval_is_a_tenth_of_the_retention_between_one_second_and_one_hour() -> None:
    assert retention_interval(timedelta(seconds=2)) == timedelta(seconds=1)
    assert retention_interval(timedelta(minutes=10)) == timedelta(minutes=1)
    assert retention_interval(timedelta(days=7)) == timedelta(hours=1)
