"""Idempotency keys and priorities through the executor, on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging

import pytest

from durable_execution import (
    ChildTask,
    DurableExecutor,
    FinalizeTask,
    ParentTaskResult,
    TaskContext,
    TaskEnqueueOptions,
)
from durable_execution.storage import DurableStorage

from ._support import MakeExecutor, RunCounter, all_records, wait_completed, wait_finished


def keyed(key: str) -> TaskEnqueueOptions:
    return TaskEnqueueOptions(idempotency_key=key)


def _echo(ctx: TaskContext, value: str | int) -> str | int:
    return value


# --- idempotency keys -----------------------------------------------------------------------


async def test_a_second_enqueue_with_the_key_returns_the_first_execution(
    executor: DurableExecutor, storage: DurableStorage, caplog: pytest.LogCaptureFixture
) -> None:
    runs = RunCounter()

    def charge(ctx: TaskContext, amount: int) -> str:
        runs.hit("charge")
        return f"charged {amount}"

    task = executor.task(id="charge", timeout_ms=5000, run=charge)
    first = await executor.enqueue_task(task, 42, keyed("order-42"))
    completed = await wait_completed(first)
    caplog.set_level(logging.DEBUG, logger="durable_execution")
    # Finished, and another input: still the same execution (the first enqueue wins).
    again = await executor.enqueue_task(task, 99, keyed("order-42"))
    assert again.execution_id == first.execution_id
    assert (await wait_completed(again)).output == completed.output == "charged 42"
    assert runs["charge"] == 1
    assert [r.execution_id for r in await all_records(storage)] == [first.execution_id]
    assert "returned existing execution" in caplog.text


async def test_concurrent_enqueues_of_one_key_make_one_execution(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    """Coalesced into one transaction or not, every caller gets the one execution."""
    task = executor.task(id="echo", timeout_ms=5000, run=_echo)
    handles = await asyncio.gather(
        *(executor.enqueue_task(task, n, keyed("once")) for n in range(20))
    )
    assert len({handle.execution_id for handle in handles}) == 1
    await wait_completed(handles[0])
    records = await all_records(storage)
    assert len(records) == 1
    assert records[0].idempotency_key == "once"


async def test_keys_are_per_task(executor: DurableExecutor) -> None:
    first = executor.task(id="first", timeout_ms=5000, run=_echo)
    second = executor.task(id="second", timeout_ms=5000, run=_echo)
    a = await executor.enqueue_task(first, 1, keyed("k"))
    b = await executor.enqueue_task(second, 2, keyed("k"))
    assert a.execution_id != b.execution_id
    assert (await wait_completed(b)).output == 2


async def test_enqueue_tasks_returns_existing_handles_in_input_order(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    task = executor.task(id="echo", timeout_ms=5000, run=_echo)
    existing = await executor.enqueue_task(task, "old", keyed("b"))
    handles = await executor.enqueue_tasks(
        task,
        ["a", "b", "c", "a again", "free"],
        [keyed("a"), keyed("b"), keyed("c"), keyed("a"), None],
    )
    ids = [handle.execution_id for handle in handles]
    assert ids[1] == existing.execution_id
    assert ids[3] == ids[0]
    assert len(set(ids)) == 4
    outputs = [(await wait_completed(handle)).output for handle in handles]
    assert outputs == ["a", "old", "c", "a", "free"]
    assert len(await all_records(storage)) == 4


async def test_enqueue_tasks_refuses_one_key_for_many_inputs_and_mismatched_options(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    task = executor.task(id="echo", timeout_ms=5000, run=_echo)
    with pytest.raises(ValueError, match="one idempotency_key for 2 inputs"):
        await executor.enqueue_tasks(task, [1, 2], keyed("k"))
    with pytest.raises(ValueError, match="2 options for 3 inputs"):
        await executor.enqueue_tasks(task, [1, 2, 3], [None, keyed("k")])
    with pytest.raises(ValueError, match="expected TaskEnqueueOptions"):
        await executor.enqueue_tasks(task, [1], "options")  # type: ignore[arg-type]
    assert await all_records(storage) == []
    (one,) = await executor.enqueue_tasks(task, [1], keyed("k"))  # one input, one key: fine
    assert (await wait_completed(one)).output == 1


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("", "must not be empty"),
        ("k" * 256, "at most 255 characters, got 256"),
        (42, "must be a str, got int"),
        ("a\x00b", "holds a NUL or a lone surrogate"),
        ("a\ud800b", "holds a NUL or a lone surrogate"),
    ],
)
async def test_a_bad_key_is_refused_and_nothing_is_stored(
    executor: DurableExecutor, storage: DurableStorage, key: object, problem: str
) -> None:
    task = executor.task(id="echo", timeout_ms=5000, run=_echo)
    options = TaskEnqueueOptions(idempotency_key=key)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=f"Invalid idempotency key for task echo: .*{problem}"):
        await executor.enqueue_task(task, 1, options)
    assert await all_records(storage) == []
    stored = await executor.enqueue_task(task, 1, keyed("k" * 255 + ""))
    assert (await wait_completed(stored)).output == 1


async def test_a_child_may_not_have_a_key(executor: DurableExecutor) -> None:
    child = executor.task(id="child", timeout_ms=5000, run=_echo)

    def run_parent(ctx: TaskContext, value: int) -> ParentTaskResult[int]:
        return ParentTaskResult(output=value, children_tasks=[ChildTask(child, 1, keyed("k"))])

    parent = executor.parent_task(id="parent", timeout_ms=5000, run_parent=run_parent)
    execution = await wait_finished(await executor.enqueue_task(parent, 1))
    assert execution.status == "failed"
    assert "idempotency_key is for enqueue_task and enqueue_tasks, not children" in (
        execution.error.message
    )


# --- priorities -----------------------------------------------------------------------------


async def test_higher_priorities_run_first_fifo_within_one(make_executor: MakeExecutor) -> None:
    """Enqueued before the executor starts, run one at a time: the claim order is the order."""
    executor = await make_executor(start=False, max_concurrent_task_executions=1)
    order: list[str] = []

    def record_order(ctx: TaskContext, name: str) -> str:
        order.append(name)
        return name

    task = executor.task(id="ordered", timeout_ms=5000, run=record_order)
    plan = [("low-1", -5), ("normal-1", 0), ("high-1", 7), ("normal-2", 0), ("high-2", 7)]
    handles = [
        await executor.enqueue_task(
            task, name, None if priority == 0 else TaskEnqueueOptions(priority=priority)
        )
        for name, priority in plan
    ]
    await executor.start()
    for handle in handles:
        await wait_completed(handle)
    assert order == ["high-1", "high-2", "normal-1", "normal-2", "low-1"]


async def test_children_and_finalize_inherit_the_parent_priority(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    child = executor.task(id="child", timeout_ms=5000, run=_echo)

    def run_parent(ctx: TaskContext, value: int) -> ParentTaskResult[int]:
        return ParentTaskResult(
            output=value,
            children_tasks=[
                ChildTask(child, 1),
                ChildTask(child, 2, TaskEnqueueOptions(priority=-1)),
            ],
        )

    parent = executor.parent_task(
        id="parent",
        timeout_ms=5000,
        run_parent=run_parent,
        finalize_task=FinalizeTask(id="finalize", timeout_ms=5000, run=lambda ctx, fin: 0),
    )
    handle = await executor.enqueue_task(parent, 1, TaskEnqueueOptions(priority=3))
    await wait_completed(handle)
    priorities = {
        (r.task_id, r.run_input): (r.priority, r.idempotency_key)
        for r in await all_records(storage)
    }
    assert sorted(priorities.values()) == [(-1, None), (3, None), (3, None), (3, None)]


@pytest.mark.parametrize(
    "priority", [True, 1.5, "1", 2**31, -(2**31) - 1], ids=["bool", "float", "str", "big", "low"]
)
async def test_a_bad_priority_is_refused(
    executor: DurableExecutor, storage: DurableStorage, priority: object
) -> None:
    task = executor.task(id="echo", timeout_ms=5000, run=_echo)
    options = TaskEnqueueOptions(priority=priority)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="priority must be an integer from -2\\*\\*31"):
        await executor.enqueue_task(task, 1, options)
    assert await all_records(storage) == []
