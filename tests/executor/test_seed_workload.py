"""The seed workload: the same program every storage backend must run, every value checked.

It uses an executor with default options (idle sleep 500 ms, handle polling 1 s), registers tasks
after the executor started, and walks through a 16-execution tree, 100 concurrent tasks, a retry,
a failure, a failing child, a failing finalize and a 250-child fan-out.
"""

from __future__ import annotations

import asyncio
import random
import re

from durable_execution import (
    ChildTask,
    DurableExecutor,
    FinalizeTask,
    FinalizeTaskInput,
    ParentTaskOutput,
    ParentTaskResult,
    RetryOptions,
    Task,
    TaskContext,
    TaskExecution,
    TaskHandle,
)
from durable_execution.storage import DurableStorage

from ._support import (
    MakeExecutor,
    all_records,
    assert_execution_id,
    assert_finished_times,
    assert_utc,
)

TIMEOUT_MS = 1000
WAIT_MS = 60_000

Name = dict[str, str]


async def _finished(handle: TaskHandle[object]) -> TaskExecution[object]:
    """Waits with the handle's default polling, as a user would; checks the common fields."""
    execution = await handle.wait_and_get_finished_execution(timeout_ms=WAIT_MS)
    assert execution.task_id == handle.task_id
    assert execution.execution_id == handle.execution_id
    assert_execution_id(execution.execution_id)
    assert_finished_times(execution)
    return execution


def _register_tree(
    executor: DurableExecutor,
) -> tuple[Task[Name, dict[str, str]], Task[Name, str]]:
    """Registers the tree; returns its root task and ``a1``, which step 7 reuses."""

    def b1(ctx: TaskContext, value: Name) -> dict[str, str]:
        return {"name": value["name"], "task_b1_output": f"Hello from task B1, {value['name']}!"}

    def b2(ctx: TaskContext, value: dict[str, str]) -> dict[str, str]:
        return {**value, "task_b2_output": f"Hello from task B2, {value['name']}!"}

    def b3(ctx: TaskContext, value: dict[str, str]) -> dict[str, str]:
        return {
            "task_b1_output": value["task_b1_output"],
            "task_b2_output": value["task_b2_output"],
            "task_b3_output": f"Hello from task B3, {value['name']}!",
        }

    task_b = executor.sequential_tasks(
        executor.task(id="b1", timeout_ms=TIMEOUT_MS, run=b1),
        executor.task(id="b2", timeout_ms=TIMEOUT_MS, run=b2),
        executor.task(id="b3", timeout_ms=TIMEOUT_MS, run=b3),
    )

    def greeter(k: int) -> Task[Name, str]:
        def run(ctx: TaskContext, value: Name) -> str:
            return f"Hello from task A{k}, {value['name']}!"

        return executor.task(id=f"a{k}", timeout_ms=TIMEOUT_MS, run=run)

    a1, a2, a3 = greeter(1), greeter(2), greeter(3)

    def run_a(ctx: TaskContext, value: Name) -> ParentTaskResult[str]:
        return ParentTaskResult(
            output=f"Hello from task A, {value['name']}!",
            children_tasks=[ChildTask(a1, value), ChildTask(a2, value), ChildTask(a3, value)],
        )

    def finalize_a(ctx: TaskContext, fin: FinalizeTaskInput[Name, str]) -> dict[str, str]:
        outputs = [str(c.output) for c in fin.children_tasks_outputs]
        return {
            "task_a_output": fin.output,
            "task_a1_output": outputs[0],
            "task_a2_output": outputs[1],
            "task_a3_output": outputs[2],
        }

    task_a = executor.parent_task(
        id="a",
        timeout_ms=TIMEOUT_MS,
        run_parent=run_a,
        finalize_task=FinalizeTask(id="task_a_finalize", timeout_ms=TIMEOUT_MS, run=finalize_a),
    )

    def run_root(ctx: TaskContext, value: Name) -> ParentTaskResult[str]:
        return ParentTaskResult(
            output=f"Hello from root task, {value['name']}!",
            children_tasks=[ChildTask(task_a, value), ChildTask(task_b, value)],
        )

    def finalize_root(ctx: TaskContext, fin: FinalizeTaskInput[Name, str]) -> dict[str, str]:
        a_output, b_output = (c.output for c in fin.children_tasks_outputs)
        assert isinstance(a_output, dict)
        assert isinstance(b_output, dict)
        return {"root_output": fin.output, **a_output, **b_output}

    root = executor.parent_task(
        id="root",
        timeout_ms=TIMEOUT_MS,
        run_parent=run_root,
        finalize_task=FinalizeTask(id="root_finalize", timeout_ms=TIMEOUT_MS, run=finalize_root),
    )
    return root, a1


def _register_t_tasks(executor: DurableExecutor) -> list[Task[str, str]]:
    def make(i: int) -> Task[str, str]:
        async def run(ctx: TaskContext, name: str) -> str:
            await asyncio.sleep(random.uniform(0, 0.1))
            return f"Hello from task T{i}, {name}!"

        return executor.task(id=f"t{i}", timeout_ms=TIMEOUT_MS, run=run)

    return [make(i) for i in range(100)]


async def test_seed_workload(make_executor: MakeExecutor, storage: DurableStorage) -> None:
    executor = await make_executor(background_process_intra_batch_sleep_ms=500)

    # 1. The tree and 100 concurrent tasks, all enqueued together.
    root, a1 = _register_tree(executor)
    t_tasks = _register_t_tasks(executor)
    root_handle = await executor.enqueue_task(root, {"name": "world"})
    t_handles = await asyncio.gather(*(executor.enqueue_task(t, "world") for t in t_tasks))

    # 2. The tree.
    root_execution = await _finished(root_handle)
    assert root_execution.status == "completed"
    assert root_execution.task_id == "root"
    assert root_execution.output == {
        "root_output": "Hello from root task, world!",
        "task_a_output": "Hello from task A, world!",
        "task_a1_output": "Hello from task A1, world!",
        "task_a2_output": "Hello from task A2, world!",
        "task_a3_output": "Hello from task A3, world!",
        "task_b1_output": "Hello from task B1, world!",
        "task_b2_output": "Hello from task B2, world!",
        "task_b3_output": "Hello from task B3, world!",
    }
    tree = [
        r
        for r in await all_records(storage)
        if r.execution_id == root_handle.execution_id
        or (r.root_task is not None and r.root_task.execution_id == root_handle.execution_id)
    ]
    # root, a, a1-a3, task_a_finalize, 9 for the 3-step chain, root_finalize.
    assert len(tree) == 16
    assert all(r.status == "completed" for r in tree)
    # The root completes when its finalize execution is closed, so every descendant is closed.
    assert all(r.is_closed for r in tree if r.execution_id != root_handle.execution_id)
    named = sorted(r.task_id for r in tree if not r.task_id.startswith("st_"))
    assert named == sorted(
        ["root", "a", "a1", "a2", "a3", "task_a_finalize", "b1", "b2", "b3", "root_finalize"]
    )

    # 3. The 100 concurrent tasks.
    for i, handle in enumerate(t_handles):
        execution = await _finished(handle)
        assert execution.status == "completed"
        assert re.fullmatch(r"t\d+", execution.task_id)
        assert execution.task_id == f"t{i}"
        assert execution.output == f"Hello from task T{i}, world!"

    # 4. A task that succeeds on its third run.
    def retry_run(ctx: TaskContext, _: None) -> str:
        if ctx.attempt < 2:
            raise ValueError("Failed")
        return "Success"

    retry = executor.task(
        id="retry",
        timeout_ms=TIMEOUT_MS,
        retry_options=RetryOptions(max_attempts=3),
        run=retry_run,
    )
    retry_execution = await _finished(await executor.enqueue_task(retry))
    assert retry_execution.status == "completed"
    assert retry_execution.output == "Success"
    assert retry_execution.retry_attempts == 2

    # 5. A task that fails.
    def failing_run(ctx: TaskContext, _: None) -> None:
        raise ValueError("Failed")

    failing = executor.task(id="failing", timeout_ms=TIMEOUT_MS, run=failing_run)
    failing_execution = await _finished(await executor.enqueue_task(failing))
    assert failing_execution.status == "failed"
    assert failing_execution.error.message == "ValueError: Failed"
    assert failing_execution.retry_attempts == 0

    # 6. A parent whose child fails.
    def with_failing_child(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
        return ParentTaskResult(output=None, children_tasks=[ChildTask(failing, None)])

    parent_with_failing_child = executor.parent_task(
        id="parent_with_failing_child", timeout_ms=TIMEOUT_MS, run_parent=with_failing_child
    )
    child_failed = await _finished(await executor.enqueue_task(parent_with_failing_child))
    assert child_failed.status == "children_tasks_failed"
    [child_error] = child_failed.children_tasks_errors
    assert child_error.index == 0
    assert child_error.task_id == "failing"
    assert child_error.error.message == "ValueError: Failed"

    # 7. A parent whose finalize task fails.
    def with_a1_child(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
        return ParentTaskResult(output=None, children_tasks=[ChildTask(a1, {"name": "world"})])

    def failing_finalize(ctx: TaskContext, fin: FinalizeTaskInput[None, None]) -> None:
        raise ValueError("Failed")

    parent_with_failing_finalize = executor.parent_task(
        id="parent_with_failing_finalize_task",
        timeout_ms=TIMEOUT_MS,
        run_parent=with_a1_child,
        finalize_task=FinalizeTask(
            id="failing_finalize_task", timeout_ms=TIMEOUT_MS, run=failing_finalize
        ),
    )
    finalize_failed = await _finished(await executor.enqueue_task(parent_with_failing_finalize))
    assert finalize_failed.status == "finalize_task_failed"
    assert finalize_failed.finalize_task_error.message == "ValueError: Failed"

    # 8. A parent with 250 children.
    async def concurrent_child(ctx: TaskContext, index: int) -> int:
        await asyncio.sleep(0.001)
        return index

    child = executor.task(id="concurrent_child", timeout_ms=TIMEOUT_MS, run=concurrent_child)

    async def concurrent_parent(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
        await asyncio.sleep(0.01)
        return ParentTaskResult(
            output=None, children_tasks=[ChildTask(child, i) for i in range(250)]
        )

    fan_out = executor.parent_task(
        id="concurrent_parent", timeout_ms=TIMEOUT_MS, run_parent=concurrent_parent
    )
    fanned = await _finished(await executor.enqueue_task(fan_out))
    assert fanned.status == "completed"
    assert_utc(fanned.started_at)
    output = fanned.output
    assert isinstance(output, ParentTaskOutput)
    assert output.output is None
    assert len(output.children_tasks_outputs) == 250
    for i, child_output in enumerate(output.children_tasks_outputs):
        assert child_output.index == i
        assert child_output.task_id == "concurrent_child"
        assert child_output.output == i
        assert_execution_id(child_output.execution_id)
