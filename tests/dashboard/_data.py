"""Executions the dashboard tests look at, made with a real executor in the test process (the
same shapes as the CLI tests' data: a parent with a failed child, a parent with many children)."""

from __future__ import annotations

from dataclasses import dataclass

from durable_execution import (
    ChildTask,
    DurableExecutor,
    ParentTaskResult,
    TaskContext,
    open_storage,
)

HOSTILE = "<script>window.pwned=1</script>"
CHILDREN = 30


@dataclass(frozen=True, slots=True)
class Populated:
    db: str
    parents: dict[str, str]  # execution ids by task id: "mixed" (a failed child) and "many"
    hostile: str  # failed; its input and error message are both a script tag
    ready: str  # enqueued, never run


async def populate(db: str) -> Populated:
    async with open_storage(db) as storage:
        executor = DurableExecutor(storage, background_process_intra_batch_sleep_ms=50)

        @executor.task(id="double", timeout_ms=5_000)
        def double(ctx: TaskContext, value: int) -> int:
            return 2 * value

        @executor.task(id="explode", timeout_ms=5_000)
        def explode(ctx: TaskContext, value: int) -> int:
            raise ValueError(f"boom {value}")

        @executor.task(id="hostile", timeout_ms=5_000)
        def hostile(ctx: TaskContext, value: str) -> str:
            raise ValueError(value)

        def mixed(ctx: TaskContext, value: None) -> ParentTaskResult[str]:
            return ParentTaskResult(
                output="started two",
                children_tasks=[ChildTask(double, 21), ChildTask(explode, 7)],
            )

        def many(ctx: TaskContext, value: None) -> ParentTaskResult[None]:
            return ParentTaskResult(
                output=None, children_tasks=[ChildTask(double, i) for i in range(CHILDREN)]
            )

        mixed_task = executor.parent_task(id="mixed", timeout_ms=5_000, run_parent=mixed)
        many_task = executor.parent_task(id="many", timeout_ms=5_000, run_parent=many)
        async with executor:
            handles = [
                await executor.enqueue_task(mixed_task),
                await executor.enqueue_task(many_task),
                await executor.enqueue_task(hostile, HOSTILE),
            ]
            for handle in handles:
                await handle.wait_and_get_finished_execution(timeout_ms=30_000)
    ready = await make_ready(db)
    parents = {handle.task_id: handle.execution_id for handle in handles[:2]}
    return Populated(db, parents, handles[2].execution_id, ready)


async def make_ready(db: str, value: str = "input") -> str:
    """Enqueue an execution nobody runs: it stays ready."""
    async with open_storage(db) as storage:
        executor = DurableExecutor(storage)

        @executor.task(id="waits", timeout_ms=5_000)
        def waits(ctx: TaskContext, value: str) -> str:
            return value

        return (await executor.enqueue_task(waits, value)).execution_id
