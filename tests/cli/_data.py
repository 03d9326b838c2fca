"""Executions the CLI tests read back: made in the test process with a real executor."""

from __future__ import annotations

from durable_execution import (
    ChildTask,
    DurableExecutor,
    ParentTaskResult,
    TaskContext,
    open_storage,
)

CHILDREN = 30


async def make_finished(db: str) -> dict[str, str]:
    """Run two parents to the end in this process; returns their execution ids by task id."""
    async with open_storage(db) as storage:
        executor = DurableExecutor(storage, background_process_intra_batch_sleep_ms=50)

        @executor.task(id="double", timeout_ms=5_000)
        def double(ctx: TaskContext, value: int) -> int:
            return 2 * value

        @executor.task(id="explode", timeout_ms=5_000)
        def explode(ctx: TaskContext, value: int) -> int:
            raise ValueError(f"boom {value}")

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
            ]
            for handle in handles:
                await handle.wait_and_get_finished_execution(timeout_ms=30_000)
        return {handle.task_id: handle.execution_id for handle in handles}


async def make_ready(db: str) -> str:
    """Enqueue an execution nobody runs: it stays ready."""
    async with open_storage(db) as storage:
        executor = DurableExecutor(storage)

        @executor.task(id="waits", timeout_ms=5_000)
        def waits(ctx: TaskContext, value: str) -> str:
            return value

        return (await executor.enqueue_task(waits, "input")).execution_id
