"""Two executors sharing one storage split the work and never run an execution twice."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass

from durable_execution import (
    ChildTask,
    DurableExecutor,
    ParentTaskOutput,
    ParentTaskResult,
    Task,
    TaskContext,
)

from ._support import MakeExecutor, wait_completed

INTRA_BATCH_SLEEP_MS = 10


@dataclass
class _Tasks:
    parent: Task[int, ParentTaskOutput[str]]
    result1: Task[None, str]
    result2: Task[None, str]


def _register(executor: DurableExecutor, runs: Counter[tuple[str, int]], name: str) -> _Tasks:
    """Registers the same task set on ``executor``; runs are counted per (task, input)."""

    async def child_run(ctx: TaskContext, index: int) -> str:
        runs[("child", index)] += 1
        await asyncio.sleep(random.uniform(0.05, 0.06))
        return f"child {index}"

    async def quick_child_run(ctx: TaskContext, index: int) -> str:
        runs[("quick_child", index)] += 1
        await asyncio.sleep(0.01)
        return f"quick {index}"

    child = executor.task(id="child", timeout_ms=5000, run=child_run)
    quick_child = executor.task(id="quick_child", timeout_ms=5000, run=quick_child_run)

    def run_parent(ctx: TaskContext, count: int) -> ParentTaskResult[str]:
        runs[("parent", count)] += 1
        kind = child if count <= 3 else quick_child
        return ParentTaskResult(
            output=name, children_tasks=[ChildTask(kind, i) for i in range(count)]
        )

    parent = executor.parent_task(id="parent", timeout_ms=5000, run_parent=run_parent)

    def result1(ctx: TaskContext, _: None) -> str:
        runs[("result1", 0)] += 1
        return "result1"

    def result2(ctx: TaskContext, _: None) -> str:
        runs[("result2", 0)] += 1
        return "result2"

    return _Tasks(
        parent=parent,
        result1=executor.task(id="result1", timeout_ms=1000, run=result1),
        result2=executor.task(id="result2", timeout_ms=1000, run=result2),
    )


@dataclass
class _Node:
    executor: DurableExecutor
    tasks: _Tasks


async def _two_executors(
    make_executor: MakeExecutor,
) -> tuple[_Node, _Node, Counter[tuple[str, int]]]:
    runs: Counter[tuple[str, int]] = Counter()
    nodes = []
    for name in ("first", "second"):
        executor = await make_executor(background_process_intra_batch_sleep_ms=INTRA_BATCH_SLEEP_MS)
        nodes.append(_Node(executor, _register(executor, runs, name)))
    return nodes[0], nodes[1], runs


async def test_parent_with_three_children(make_executor: MakeExecutor) -> None:
    first, _, runs = await _two_executors(make_executor)
    handle = await first.executor.enqueue_task(first.tasks.parent, 3)
    execution = await wait_completed(handle)
    output = execution.output
    assert output.output in ("first", "second")  # whichever executor ran the parent
    assert [(c.index, c.task_id, c.output) for c in output.children_tasks_outputs] == [
        (0, "child", "child 0"),
        (1, "child", "child 1"),
        (2, "child", "child 2"),
    ]
    assert runs == Counter({("parent", 3): 1, ("child", 0): 1, ("child", 1): 1, ("child", 2): 1})


async def test_five_tasks_enqueued_through_both_executors(make_executor: MakeExecutor) -> None:
    first, second, runs = await _two_executors(make_executor)
    handles = [
        await first.executor.enqueue_task(first.tasks.result1),
        await second.executor.enqueue_task(second.tasks.result1),
        await first.executor.enqueue_task(first.tasks.result2),
        await second.executor.enqueue_task(second.tasks.result2),
        await first.executor.enqueue_task(first.tasks.result1),
    ]
    outputs = [(await wait_completed(handle)).output for handle in handles]
    assert Counter(outputs) == Counter({"result1": 3, "result2": 2})
    assert runs == Counter({("result1", 0): 3, ("result2", 0): 2})


async def test_parent_with_a_thousand_children(make_executor: MakeExecutor) -> None:
    _, second, runs = await _two_executors(make_executor)
    handle = await second.executor.enqueue_task(second.tasks.parent, 1000)
    execution = await wait_completed(handle)
    outputs = execution.output.children_tasks_outputs
    assert [c.index for c in outputs] == list(range(1000))
    assert [c.output for c in outputs] == [f"quick {i}" for i in range(1000)]
    assert len({c.execution_id for c in outputs}) == 1000
    # Every child ran exactly once across the two executors.
    assert all(runs[("quick_child", i)] == 1 for i in range(1000))
    assert runs[("parent", 1000)] == 1
    assert sum(runs.values()) == 1001
