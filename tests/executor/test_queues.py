"""Queues and per-key concurrency limits through the executor, on every backend.

A task's executions go to its queue and are run only by executors that serve it; a task with
``concurrency_limit`` runs at most that many executions per ``concurrency_key`` at once (the
claim enforces it in the storage; the multi-process proof is tests/cli/test_worker_queues.py).
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from durable_execution import (
    ChildTask,
    DurableExecutor,
    FinalizeTask,
    FinalizeTaskInput,
    ParentTaskResult,
    Task,
    TaskContext,
    TaskEnqueueOptions,
)
from durable_execution.storage import DurableStorage, InMemoryStorage

from ._support import MakeExecutor


def echo(ctx: TaskContext, n: int) -> int:
    return n


def count_children(ctx: TaskContext, done: FinalizeTaskInput[int, int]) -> int:
    return len(done.children_tasks_outputs)


class Gauge:
    """How many runs of each key are running now, and the most there ever were."""

    def __init__(self) -> None:
        self.now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()

    async def hold(self, key: str) -> None:
        self.now[key] += 1
        self.peak[key] = max(self.peak[key], self.now[key])
        try:
            await asyncio.sleep(0.05)
        finally:
            self.now[key] -= 1


async def test_each_executor_runs_only_the_queues_it_serves(make_executor: MakeExecutor) -> None:
    ran_by: dict[str, str] = {}

    def register(executor: DurableExecutor, name: str) -> tuple[Task[int, int], Task[int, int]]:
        def run(ctx: TaskContext, value: int) -> int:
            ran_by[ctx.execution_id] = name
            return value

        return (
            executor.task(id="mail", timeout_ms=5_000, run=run, queue="emails"),
            executor.task(id="plain", timeout_ms=5_000, run=run),
        )

    mailer = await make_executor(start=False, queues=["emails"])
    mail_task, plain_task = register(mailer, "mailer")
    general = await make_executor(start=False, queues=["default"])
    register(general, "general")
    mail = [await mailer.enqueue_task(mail_task, n) for n in range(5)]
    plain = [await mailer.enqueue_task(plain_task, n) for n in range(5)]
    await mailer.start()
    await general.start()
    for handle in [*mail, *plain]:
        execution = await handle.wait_and_get_finished_execution(timeout_ms=30_000)
        assert execution.status == "completed"
    assert {ran_by[h.execution_id] for h in mail} == {"mailer"}
    assert {ran_by[h.execution_id] for h in plain} == {"general"}


async def test_a_default_executor_serves_the_queues_of_its_tasks(
    make_executor: MakeExecutor,
) -> None:
    executor = await make_executor(start=False)
    task = executor.task(id="mail", timeout_ms=5_000, run=echo, queue="emails")
    handle = await executor.enqueue_task(task, 3)
    await executor.start()
    execution = await handle.wait_and_get_finished_execution(timeout_ms=30_000)
    assert execution.status == "completed"


async def test_at_most_limit_executions_of_a_key_run_at_once(executor: DurableExecutor) -> None:
    gauge = Gauge()

    async def run(ctx: TaskContext, key: str) -> str:
        await gauge.hold(key)
        return key

    task = executor.task(id="limited", timeout_ms=30_000, run=run, concurrency_limit=2)
    handles = [
        await executor.enqueue_task(task, key, TaskEnqueueOptions(concurrency_key=key))
        for key in ["a"] * 8 + ["b"] * 4
    ]
    pooled = [await executor.enqueue_task(task, "pool") for _ in range(4)]  # no key: one pool
    for handle in [*handles, *pooled]:
        execution = await handle.wait_and_get_finished_execution(timeout_ms=60_000)
        assert execution.status == "completed"
    assert all(peak <= 2 for peak in gauge.peak.values()), gauge.peak
    assert set(gauge.peak) == {"a", "b", "pool"}


async def test_children_use_their_own_queue_and_finalize_its_parents(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    child = executor.task(id="child", timeout_ms=5_000, run=echo, queue="kids")

    def run_parent(ctx: TaskContext, n: int) -> ParentTaskResult[int]:
        return ParentTaskResult(output=n, children_tasks=[ChildTask(child, n)])

    parent = executor.parent_task(
        id="parent",
        timeout_ms=5_000,
        run_parent=run_parent,
        queue="parents",
        finalize_task=FinalizeTask(
            id="combine",
            timeout_ms=5_000,
            run=count_children,
        ),
        concurrency_limit=1,
    )
    handle = await executor.enqueue_task(parent, 1)
    execution = await handle.wait_and_get_finished_execution(timeout_ms=30_000)
    assert execution.status == "completed"
    assert execution.output == 1
    async with storage.transaction() as tx:
        [row] = await tx.get_task_executions([handle.execution_id])
        assert (row.queue, row.concurrency_key, row.concurrency_limit) == ("parents", "", 1)
        assert row.children_tasks is not None
        assert row.finalize_task is not None
        ids = [row.children_tasks[0].execution_id, row.finalize_task.execution_id]
        kid, final = await tx.get_task_executions(ids)
    assert (kid.task_id, kid.queue, kid.concurrency_limit) == ("child", "kids", None)
    assert (final.task_id, final.queue, final.concurrency_limit) == ("combine", "parents", None)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"queue": ""}, "The queue of task t must be 1 to 200 printable characters"),
        ({"queue": "x" * 201}, "must be 1 to 200 printable characters"),
        ({"queue": "a\nb"}, "printable"),
        ({"queue": 7}, "The queue of task t must be a string"),
        ({"concurrency_limit": 0}, "concurrency_limit must be None or an integer from 1"),
        ({"concurrency_limit": True}, "concurrency_limit must be None or an integer from 1"),
        ({"concurrency_limit": 2**31}, "concurrency_limit must be None or an integer from 1"),
    ],
)
def test_bad_task_options_are_refused_at_registration(
    options: dict[str, object], message: str
) -> None:
    executor = DurableExecutor(InMemoryStorage())
    with pytest.raises(ValueError, match=message):
        executor.task(id="t", timeout_ms=1_000, run=echo, **options)  # type: ignore[call-overload]
    assert "t" not in executor.registered_task_ids


async def test_bad_concurrency_keys_are_refused_at_enqueue(executor: DurableExecutor) -> None:
    free = executor.task(id="free", timeout_ms=1_000, run=echo)
    limited = executor.task(id="limited", timeout_ms=1_000, run=echo, concurrency_limit=1)
    with pytest.raises(ValueError, match="concurrency_key needs a task registered with"):
        await executor.enqueue_task(free, 1, TaskEnqueueOptions(concurrency_key="k"))
    with pytest.raises(ValueError, match="concurrency_key must be 1 to 200"):
        await executor.enqueue_task(limited, 1, TaskEnqueueOptions(concurrency_key=""))
    with pytest.raises(ValueError, match="concurrency_key must be a string"):
        await executor.enqueue_task(limited, 1, TaskEnqueueOptions(concurrency_key=7))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("queues", "message"),
    [
        ("emails", "queues must be None or a list of queue names"),
        ([], "queues must name at least one queue"),
        ([""], "A queue name must be 1 to 200"),
    ],
)
def test_bad_executor_queues_are_refused(queues: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DurableExecutor(InMemoryStorage(), queues=queues)  # type: ignore[arg-type]
