"""Parent tasks: children, finalize tasks, failure propagation up and cancellation down."""

from __future__ import annotations

import asyncio

import pydantic
import pytest

from durable_execution import (
    ChildTask,
    ChildTaskError,
    DurableExecutionError,
    DurableExecutor,
    ExecutionErrorInfo,
    FinalizeTask,
    FinalizeTaskInput,
    ParentTaskOutput,
    ParentTaskRef,
    ParentTaskResult,
    RetryOptions,
    Task,
    TaskContext,
    TaskEnqueueOptions,
    TaskRef,
)
from durable_execution.storage import DurableStorage

from ._support import (
    MakeExecutor,
    RunCounter,
    all_records,
    assert_execution_id,
    assert_finished_times,
    eventually,
    get_record,
    wait_completed,
    wait_finished,
)


async def test_parent_with_two_children(executor: DurableExecutor, storage: DurableStorage) -> None:
    runs = RunCounter()

    def child_run(ctx: TaskContext, name: str) -> str:
        runs.hit(ctx.task_id)
        return f"{name}_output"

    child1 = executor.task(id="child1", timeout_ms=1000, run=child_run)
    child2 = executor.task(id="child2", timeout_ms=1000, run=child_run)

    def run_parent(ctx: TaskContext, name: str) -> ParentTaskResult[str]:
        runs.hit("parent")
        return ParentTaskResult(
            output=f"{name}_output",
            children_tasks=[ChildTask(child1, "child1"), ChildTask(child2, "child2")],
        )

    parent = executor.parent_task(id="parent", timeout_ms=1000, run_parent=run_parent)
    handle = await executor.enqueue_task(parent, "test")
    execution = await wait_completed(handle)

    output = execution.output
    assert isinstance(output, ParentTaskOutput)
    assert output.output == "test_output"
    assert [(c.index, c.task_id, c.output) for c in output.children_tasks_outputs] == [
        (0, "child1", "child1_output"),
        (1, "child2", "child2_output"),
    ]
    for child_output in output.children_tasks_outputs:
        assert_execution_id(child_output.execution_id)
    assert execution.run_output == "test_output"
    assert execution.children_tasks == tuple(
        TaskRef(task_id=c.task_id, execution_id=c.execution_id)
        for c in output.children_tasks_outputs
    )
    assert runs.counts == {"parent": 1, "child1": 1, "child2": 1}

    # Children point at their parent and at the root of the tree.
    for child_output in output.children_tasks_outputs:
        record = await get_record(storage, child_output.execution_id)
        assert record.parent_task == ParentTaskRef(
            task_id="parent", execution_id=handle.execution_id, is_finalize_task=False
        )
        assert record.root_task == TaskRef(task_id="parent", execution_id=handle.execution_id)
        assert record.status == "completed"
        assert record.is_closed


async def test_parent_without_children(executor: DurableExecutor) -> None:
    def run_parent(ctx: TaskContext, _: None) -> ParentTaskResult[str]:
        return ParentTaskResult(output="test_output")

    parent = executor.parent_task(id="parent", timeout_ms=1000, run_parent=run_parent)
    execution = await wait_completed(await executor.enqueue_task(parent))
    assert execution.output == ParentTaskOutput(output="test_output", children_tasks_outputs=[])
    assert execution.children_tasks == ()
    assert execution.finalize_task is None


async def test_finalize_combines_parent_and_children_outputs(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    runs = RunCounter()
    finalize_inputs: list[FinalizeTaskInput[str, str]] = []

    def child_run(ctx: TaskContext, _: None) -> str:
        runs.hit(ctx.task_id)
        return f"{ctx.task_id}_output"

    child1 = executor.task(id="child1", timeout_ms=1000, run=child_run)
    child2 = executor.task(id="child2", timeout_ms=1000, run=child_run)

    def run_parent(ctx: TaskContext, name: str) -> ParentTaskResult[str]:
        runs.hit("parent")
        return ParentTaskResult(
            output=f"{name}_output",
            children_tasks=[ChildTask(child1, None), ChildTask(child2, None)],
        )

    def finalize(ctx: TaskContext, fin: FinalizeTaskInput[str, str]) -> str:
        runs.hit("finalize")
        finalize_inputs.append(fin)
        return "_".join([fin.output, *(str(c.output) for c in fin.children_tasks_outputs)])

    parent = executor.parent_task(
        id="parent",
        timeout_ms=1000,
        run_parent=run_parent,
        finalize_task=FinalizeTask(id="finalize", timeout_ms=1000, run=finalize),
    )
    handle = await executor.enqueue_task(parent, "test")
    execution = await wait_completed(handle)
    assert execution.output == "test_output_child1_output_child2_output"
    assert runs.counts == {"parent": 1, "child1": 1, "child2": 1, "finalize": 1}

    [fin] = finalize_inputs
    assert fin.input == "test"
    assert fin.output == "test_output"
    assert [c.index for c in fin.children_tasks_outputs] == [0, 1]

    assert execution.finalize_task is not None
    assert execution.finalize_task.task_id == "finalize"
    assert_execution_id(execution.finalize_task.execution_id)
    record = await get_record(storage, execution.finalize_task.execution_id)
    assert record.parent_task == ParentTaskRef(
        task_id="parent", execution_id=handle.execution_id, is_finalize_task=True
    )
    assert record.root_task == TaskRef(task_id="parent", execution_id=handle.execution_id)
    assert record.status == "completed"


async def test_finalize_without_children(executor: DurableExecutor) -> None:
    def run_parent(ctx: TaskContext, name: str) -> ParentTaskResult[str]:
        return ParentTaskResult(output=f"{name}_output")

    def finalize(ctx: TaskContext, fin: FinalizeTaskInput[str, str]) -> str:
        assert len(fin.children_tasks_outputs) == 0
        return f"{fin.output}_" + "".join(str(c.output) for c in fin.children_tasks_outputs)

    parent = executor.parent_task(
        id="parent",
        timeout_ms=1000,
        run_parent=run_parent,
        finalize_task=FinalizeTask(id="finalize", timeout_ms=1000, run=finalize),
    )
    execution = await wait_completed(await executor.enqueue_task(parent, "test"))
    assert execution.output == "test_output_"
    assert execution.children_tasks == ()


class ParentInput(pydantic.BaseModel):
    name: str


async def test_schema_validated_parent(executor: DurableExecutor) -> None:
    runs = RunCounter()

    def run_parent(ctx: TaskContext, value: ParentInput) -> ParentTaskResult[str]:
        runs.hit("parent")
        return ParentTaskResult(output=value.name)

    parent = executor.input_schema(ParentInput).parent_task(
        id="parent", timeout_ms=1000, run_parent=run_parent
    )
    execution = await wait_completed(await executor.enqueue_task(parent, ParentInput(name="x")))
    assert execution.output == ParentTaskOutput(output="x", children_tasks_outputs=[])
    with pytest.raises(DurableExecutionError, match=r"^Invalid input to task parent"):
        await executor.enqueue_task(parent, {"name": 5})  # type: ignore[misc]  # deliberately wrong
    assert runs["parent"] == 1


async def test_validate_input_parent(executor: DurableExecutor) -> None:
    def validate(value: int) -> int:
        if value < 0:
            raise ValueError("negative")
        return value

    def run_parent(ctx: TaskContext, value: int) -> ParentTaskResult[int]:
        return ParentTaskResult(output=value)

    parent = executor.validate_input(validate).parent_task(
        id="parent", timeout_ms=1000, run_parent=run_parent
    )
    execution = await wait_completed(await executor.enqueue_task(parent, 3))
    assert execution.output == ParentTaskOutput(output=3, children_tasks_outputs=[])
    with pytest.raises(DurableExecutionError, match=r"^Invalid input to task parent: negative"):
        await executor.enqueue_task(parent, -1)


async def test_child_input_is_validated_when_the_parent_creates_it(
    executor: DurableExecutor,
) -> None:
    def validate(value: int) -> int:
        if value < 0:
            raise ValueError("negative")
        return value

    def child_run(ctx: TaskContext, value: int) -> int:
        return value

    child = executor.validate_input(validate).task(id="child", timeout_ms=1000, run=child_run)

    def run_parent(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
        return ParentTaskResult(output=None, children_tasks=[ChildTask(child, -1)])

    parent = executor.parent_task(
        id="parent",
        timeout_ms=1000,
        retry_options=RetryOptions(max_attempts=3),
        run_parent=run_parent,
    )
    execution = await wait_finished(await executor.enqueue_task(parent))
    assert execution.status == "failed"
    assert execution.error.message.startswith("Invalid input to task child: negative")
    assert execution.error.is_retryable is False
    assert execution.retry_attempts == 0


async def test_unknown_child_task_fails_the_parent(
    executor: DurableExecutor, make_executor: MakeExecutor
) -> None:
    elsewhere = await make_executor(start=False)

    def other_run(ctx: TaskContext, _: None) -> None:
        return None

    other = elsewhere.task(id="other", timeout_ms=1000, run=other_run)

    def run_parent(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
        return ParentTaskResult(output=None, children_tasks=[ChildTask(other, None)])

    parent = executor.parent_task(id="parent", timeout_ms=1000, run_parent=run_parent)
    execution = await wait_finished(await executor.enqueue_task(parent))
    assert execution.status == "failed"
    assert execution.error.error_type == "not_found"
    assert execution.error.message.startswith("Child task other not found")
    assert execution.error.is_retryable is False


async def test_child_options_override_child_defaults(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    def child_run(ctx: TaskContext, _: None) -> str:
        return "child"

    child = executor.task(id="child", timeout_ms=1000, run=child_run)

    def run_parent(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
        options = TaskEnqueueOptions(
            timeout_ms=5000, retry_options=RetryOptions(max_attempts=2), sleep_ms_before_run=10
        )
        return ParentTaskResult(output=None, children_tasks=[ChildTask(child, None, options)])

    parent = executor.parent_task(id="parent", timeout_ms=1000, run_parent=run_parent)
    execution = await wait_completed(await executor.enqueue_task(parent))
    [child_ref] = execution.children_tasks
    record = await get_record(storage, child_ref.execution_id)
    assert record.timeout_ms == 5000
    assert record.retry_options == RetryOptions(max_attempts=2)
    assert record.sleep_ms_before_run == 10


async def test_parent_timeout_covers_only_its_own_run(executor: DurableExecutor) -> None:
    async def slow_child_run(ctx: TaskContext, _: None) -> str:
        await asyncio.sleep(0.3)
        return "slow"

    child = executor.task(id="child", timeout_ms=1000, run=slow_child_run)

    def run_parent(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
        return ParentTaskResult(output=None, children_tasks=[ChildTask(child, None)])

    parent = executor.parent_task(id="parent", timeout_ms=100, run_parent=run_parent)
    execution = await wait_completed(await executor.enqueue_task(parent))
    output = execution.output
    assert [c.output for c in output.children_tasks_outputs] == ["slow"]


async def test_parent_run_errors_are_retried(executor: DurableExecutor) -> None:
    runs = RunCounter()

    def run_parent(ctx: TaskContext, _: None) -> ParentTaskResult[int]:
        runs.hit("parent")
        if ctx.attempt == 0:
            raise ValueError("flaky")
        return ParentTaskResult(output=ctx.attempt)

    parent = executor.parent_task(
        id="parent",
        timeout_ms=1000,
        retry_options=RetryOptions(max_attempts=1),
        run_parent=run_parent,
    )
    execution = await wait_completed(await executor.enqueue_task(parent))
    assert execution.output == ParentTaskOutput(output=1, children_tasks_outputs=[])
    assert execution.retry_attempts == 1
    assert runs["parent"] == 2


# --- failures propagate upward ------------------------------------------------------------------


async def test_one_failing_child_fails_the_parent_and_skips_finalize(
    executor: DurableExecutor,
) -> None:
    runs = RunCounter()
    child2_done = asyncio.Event()

    async def child1_run(ctx: TaskContext, _: None) -> str:
        runs.hit("child1")
        # Fail only once the sibling has finished, so that the sibling deterministically ran.
        await asyncio.wait_for(child2_done.wait(), timeout=10)
        await asyncio.sleep(0.05)
        raise ValueError("child1 error")

    async def child2_run(ctx: TaskContext, _: None) -> str:
        runs.hit("child2")
        child2_done.set()
        return "child2_output"

    child1 = executor.task(id="child1", timeout_ms=30_000, run=child1_run)
    child2 = executor.task(id="child2", timeout_ms=1000, run=child2_run)

    def run_parent(ctx: TaskContext, _: None) -> ParentTaskResult[str]:
        runs.hit("parent")
        return ParentTaskResult(
            output="parent_output",
            children_tasks=[ChildTask(child1, None), ChildTask(child2, None)],
        )

    def finalize(ctx: TaskContext, fin: FinalizeTaskInput[None, str]) -> str:
        runs.hit("finalize")
        return "finalized"

    parent = executor.parent_task(
        id="parent",
        timeout_ms=1000,
        run_parent=run_parent,
        finalize_task=FinalizeTask(id="finalize", timeout_ms=1000, run=finalize),
    )
    execution = await wait_finished(await executor.enqueue_task(parent))
    assert execution.status == "children_tasks_failed"
    assert_finished_times(execution)
    assert execution.run_output == "parent_output"
    child1_ref, _ = execution.children_tasks
    assert execution.children_tasks_errors == (
        ChildTaskError(
            index=0,
            task_id="child1",
            execution_id=child1_ref.execution_id,
            # The parent's copy of the child's error has no traceback: the child's row has it.
            error=ExecutionErrorInfo(
                error_type="generic",
                message="ValueError: child1 error",
                is_retryable=True,
                exception_type="ValueError",
            ),
        ),
    )
    await asyncio.sleep(0.3)  # a wrongly started finalize would run by now
    assert runs.counts == {"parent": 1, "child1": 1, "child2": 1}


async def test_two_failing_children_both_reported(executor: DurableExecutor) -> None:
    both_started = asyncio.Barrier(2)

    async def failing_run(ctx: TaskContext, _: None) -> str:
        await asyncio.wait_for(both_started.wait(), timeout=10)
        raise ValueError(f"{ctx.task_id} error")

    child1 = executor.task(id="child1", timeout_ms=30_000, run=failing_run)
    child2 = executor.task(id="child2", timeout_ms=30_000, run=failing_run)

    def run_parent(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
        return ParentTaskResult(
            output=None, children_tasks=[ChildTask(child1, None), ChildTask(child2, None)]
        )

    parent = executor.parent_task(id="parent", timeout_ms=1000, run_parent=run_parent)
    handle = await executor.enqueue_task(parent)
    execution = await wait_finished(handle)
    assert execution.status == "children_tasks_failed"

    async def errors() -> tuple[ChildTaskError, ...]:
        current = await handle.get_execution()
        assert current.status == "children_tasks_failed"
        return current.children_tasks_errors

    async def both_reported() -> bool:
        return len(await errors()) == 2

    # The second failure may be closed after the parent already failed; it is still recorded.
    await eventually(both_reported, what="both child errors recorded")
    reported = sorted(await errors(), key=lambda e: e.index)
    assert [(e.index, e.task_id, e.error.message) for e in reported] == [
        (0, "child1", "ValueError: child1 error"),
        (1, "child2", "ValueError: child2 error"),
    ]
    assert all(e.error.error_type == "generic" and e.error.is_retryable for e in reported)


async def test_failing_finalize_fails_the_parent(executor: DurableExecutor) -> None:
    runs = RunCounter()

    def child_run(ctx: TaskContext, _: None) -> str:
        runs.hit(ctx.task_id)
        return "ok"

    child1 = executor.task(id="child1", timeout_ms=1000, run=child_run)
    child2 = executor.task(id="child2", timeout_ms=1000, run=child_run)

    def run_parent(ctx: TaskContext, _: None) -> ParentTaskResult[str]:
        runs.hit("parent")
        return ParentTaskResult(
            output="parent_output",
            children_tasks=[ChildTask(child1, None), ChildTask(child2, None)],
        )

    def finalize(ctx: TaskContext, fin: FinalizeTaskInput[None, str]) -> str:
        runs.hit("finalize")
        raise ValueError("finalizeTask error")

    parent = executor.parent_task(
        id="parent",
        timeout_ms=1000,
        run_parent=run_parent,
        finalize_task=FinalizeTask(id="finalize", timeout_ms=1000, run=finalize),
    )
    execution = await wait_finished(await executor.enqueue_task(parent))
    assert execution.status == "finalize_task_failed"
    assert_finished_times(execution)
    assert execution.finalize_task_error == ExecutionErrorInfo(
        error_type="generic",
        message="ValueError: finalizeTask error",
        is_retryable=True,
        exception_type="ValueError",
    )
    assert execution.finalize_task.task_id == "finalize"
    assert len(execution.children_tasks) == 2
    assert runs.counts == {"parent": 1, "child1": 1, "child2": 1, "finalize": 1}


async def test_parent_shaped_finalize_with_nested_finalize(executor: DurableExecutor) -> None:
    runs = RunCounter()

    def leaf_run(ctx: TaskContext, _: None) -> str:
        runs.hit(ctx.task_id)
        return ctx.task_id

    c1 = executor.task(id="c1", timeout_ms=1000, run=leaf_run)
    c2 = executor.task(id="c2", timeout_ms=1000, run=leaf_run)
    fc1 = executor.task(id="fc1", timeout_ms=1000, run=leaf_run)
    fc2 = executor.task(id="fc2", timeout_ms=1000, run=leaf_run)

    def run_parent(ctx: TaskContext, name: str) -> ParentTaskResult[str]:
        runs.hit("parent")
        return ParentTaskResult(
            output=name, children_tasks=[ChildTask(c1, None), ChildTask(c2, None)]
        )

    def finalize_parent(
        ctx: TaskContext, fin: FinalizeTaskInput[str, str]
    ) -> ParentTaskResult[str]:
        runs.hit("finalize")
        return ParentTaskResult(
            output="fin", children_tasks=[ChildTask(fc1, None), ChildTask(fc2, None)]
        )

    def nested_finalize(
        ctx: TaskContext, nested: FinalizeTaskInput[FinalizeTaskInput[str, str], str]
    ) -> str:
        runs.hit("nested_finalize")
        # The nested finalize sees the outer finalize's input as its own ``input``.
        outer = nested.input
        assert isinstance(outer, FinalizeTaskInput)
        parts = [
            outer.input,
            outer.output,
            *(str(c.output) for c in outer.children_tasks_outputs),
            nested.output,
            *(str(c.output) for c in nested.children_tasks_outputs),
        ]
        return "_".join(parts)

    parent = executor.parent_task(
        id="parent",
        timeout_ms=1000,
        run_parent=run_parent,
        finalize_task=FinalizeTask(
            id="finalize",
            timeout_ms=1000,
            run_parent=finalize_parent,
            finalize_task=FinalizeTask(id="nested_finalize", timeout_ms=1000, run=nested_finalize),
        ),
    )
    execution = await wait_completed(await executor.enqueue_task(parent, "root"))
    assert execution.output == "root_root_c1_c2_fin_fc1_fc2"
    assert runs.total() == 7
    assert all(count == 1 for count in runs.counts.values())


async def test_parent_shaped_finalize_without_own_finalize_outputs_parent_output(
    executor: DurableExecutor,
) -> None:
    def leaf_run(ctx: TaskContext, value: int) -> int:
        return value * 10

    leaf = executor.task(id="leaf", timeout_ms=1000, run=leaf_run)

    def run_parent(ctx: TaskContext, _: None) -> ParentTaskResult[str]:
        return ParentTaskResult(output="p")

    def finalize_parent(
        ctx: TaskContext, fin: FinalizeTaskInput[None, str]
    ) -> ParentTaskResult[str]:
        return ParentTaskResult(output="f", children_tasks=[ChildTask(leaf, 4)])

    parent = executor.parent_task(
        id="parent",
        timeout_ms=1000,
        run_parent=run_parent,
        finalize_task=FinalizeTask(id="finalize", timeout_ms=1000, run_parent=finalize_parent),
    )
    execution = await wait_completed(await executor.enqueue_task(parent))
    output = execution.output
    assert isinstance(output, ParentTaskOutput)
    assert output.output == "f"
    assert [(c.index, c.task_id, c.output) for c in output.children_tasks_outputs] == [
        (0, "leaf", 40)
    ]


async def test_failures_climb_the_tree_with_nested_messages(executor: DurableExecutor) -> None:
    def grandchild_run(ctx: TaskContext, _: None) -> None:
        raise DurableExecutionError("boom", is_retryable=False)

    grandchild = executor.task(id="grandchild", timeout_ms=1000, run=grandchild_run)

    def child_run(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
        return ParentTaskResult(output=None, children_tasks=[ChildTask(grandchild, None)])

    child = executor.parent_task(id="child", timeout_ms=1000, run_parent=child_run)

    def parent_run(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
        return ParentTaskResult(output=None, children_tasks=[ChildTask(child, None)])

    parent = executor.parent_task(id="parent", timeout_ms=1000, run_parent=parent_run)
    execution = await wait_finished(await executor.enqueue_task(parent))
    assert execution.status == "children_tasks_failed"
    [error] = execution.children_tasks_errors
    assert (error.index, error.task_id) == (0, "child")
    assert error.error == ExecutionErrorInfo(
        error_type="generic",
        message="Children task errors:\n  Child task with id grandchild failed: boom",
        is_retryable=False,
    )


async def test_failed_finalize_reported_to_grandparent(executor: DurableExecutor) -> None:
    def finalize(ctx: TaskContext, fin: FinalizeTaskInput[None, None]) -> None:
        raise ValueError("no way")

    def child_run(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
        return ParentTaskResult(output=None)

    child = executor.parent_task(
        id="child",
        timeout_ms=1000,
        run_parent=child_run,
        finalize_task=FinalizeTask(id="child_finalize", timeout_ms=1000, run=finalize),
    )

    def parent_run(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
        return ParentTaskResult(output=None, children_tasks=[ChildTask(child, None)])

    parent = executor.parent_task(id="parent", timeout_ms=1000, run_parent=parent_run)
    execution = await wait_finished(await executor.enqueue_task(parent))
    assert execution.status == "children_tasks_failed"
    [error] = execution.children_tasks_errors
    assert error.error == ExecutionErrorInfo(
        error_type="generic",
        message="Finalize task with id child_finalize failed: ValueError: no way",
        is_retryable=False,
    )


# --- cancellation flows downward ----------------------------------------------------------------


async def test_cancelling_a_waiting_parent_cancels_its_children(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    started = asyncio.Semaphore(0)
    cancelled_runs: list[str] = []

    async def child_run(ctx: TaskContext, _: None) -> str:
        started.release()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled_runs.append(ctx.execution_id)
            raise
        return "late"

    child = executor.task(id="child", timeout_ms=60_000, run=child_run)

    def run_parent(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
        return ParentTaskResult(
            output=None, children_tasks=[ChildTask(child, None), ChildTask(child, None)]
        )

    parent = executor.parent_task(id="parent", timeout_ms=1000, run_parent=run_parent)
    handle = await executor.enqueue_task(parent)
    for _ in range(2):
        await asyncio.wait_for(started.acquire(), timeout=10)
    waiting = await handle.get_execution()
    assert waiting.status == "waiting_for_children_tasks"
    child_ids = [ref.execution_id for ref in waiting.children_tasks]

    await handle.cancel()
    execution = await wait_finished(handle)
    assert execution.status == "cancelled"
    assert execution.error.message == "Task cancelled"

    expected_error = ExecutionErrorInfo(
        error_type="cancelled",
        message=f"Parent task parent with execution id {handle.execution_id} failed: "
        "Task cancelled",
        is_retryable=False,
    )

    async def children_cancelled() -> bool:
        records = [await get_record(storage, child_id) for child_id in child_ids]
        return all(r.status == "cancelled" for r in records)

    await eventually(children_cancelled, what="children cancelled")
    for child_id in child_ids:
        assert (await get_record(storage, child_id)).error == expected_error
    await eventually(lambda: sorted(cancelled_runs) == sorted(child_ids), what="runs cancelled")
    assert (await handle.get_execution()).status == "cancelled"


async def test_cancelling_a_child_fails_its_parent(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    started = asyncio.Event()

    async def child_run(ctx: TaskContext, index: int) -> int:
        started.set()
        await asyncio.sleep(30)
        return index

    child = executor.task(id="child", timeout_ms=60_000, run=child_run)

    def run_parent(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
        return ParentTaskResult(
            output=None, children_tasks=[ChildTask(child, 0), ChildTask(child, 1)]
        )

    parent = executor.parent_task(id="parent", timeout_ms=1000, run_parent=run_parent)
    handle = await executor.enqueue_task(parent)
    await asyncio.wait_for(started.wait(), timeout=10)
    waiting = await handle.get_execution()
    assert waiting.status == "waiting_for_children_tasks"
    first, second = waiting.children_tasks

    await (await executor.get_task_handle(child, first.execution_id)).cancel()
    execution = await wait_finished(handle)
    assert execution.status == "children_tasks_failed"
    assert execution.children_tasks_errors[0] == ChildTaskError(
        index=0,
        task_id="child",
        execution_id=first.execution_id,
        error=ExecutionErrorInfo(
            error_type="cancelled", message="Task cancelled", is_retryable=False
        ),
    )

    # The failed parent, once closed, cancels the sibling that was still running.
    async def sibling_cancelled() -> bool:
        return (await get_record(storage, second.execution_id)).status == "cancelled"

    await eventually(sibling_cancelled, what="sibling cancelled")
    sibling = await get_record(storage, second.execution_id)
    assert sibling.error is not None
    assert sibling.error.error_type == "cancelled"
    assert sibling.error.message.startswith(
        f"Parent task parent with execution id {handle.execution_id} failed: "
        "Children task errors:\n  Child task with id child failed: Task cancelled"
    )


async def test_finalize_execution_is_cancelled_with_its_parent(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    """Fixed reference bug: a running finalize execution is cancelled when its parent is."""
    finalize_started = asyncio.Event()
    finalize_cancelled = asyncio.Event()

    async def finalize(ctx: TaskContext, fin: FinalizeTaskInput[None, None]) -> str:
        finalize_started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            finalize_cancelled.set()
            raise
        return "late"

    def run_parent(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
        return ParentTaskResult(output=None)

    parent = executor.parent_task(
        id="parent",
        timeout_ms=1000,
        run_parent=run_parent,
        finalize_task=FinalizeTask(id="finalize", timeout_ms=60_000, run=finalize),
    )
    handle = await executor.enqueue_task(parent)
    await asyncio.wait_for(finalize_started.wait(), timeout=10)
    waiting = await handle.get_execution()
    assert waiting.status == "waiting_for_finalize_task"
    finalize_id = waiting.finalize_task.execution_id

    await handle.cancel()
    execution = await wait_finished(handle)
    assert execution.status == "cancelled"
    await asyncio.wait_for(finalize_cancelled.wait(), timeout=10)
    record = await get_record(storage, finalize_id)
    assert record.status == "cancelled"
    assert record.error == ExecutionErrorInfo(
        error_type="cancelled",
        message=f"Parent task parent with execution id {handle.execution_id} failed: "
        "Task cancelled",
        is_retryable=False,
    )
    assert (await handle.get_execution()).status == "cancelled"


async def test_whole_tree_is_stored_with_one_root(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    def leaf_run(ctx: TaskContext, _: None) -> None:
        return None

    leaf = executor.task(id="leaf", timeout_ms=1000, run=leaf_run)

    def middle_run(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
        return ParentTaskResult(output=None, children_tasks=[ChildTask(leaf, None)])

    middle = executor.parent_task(id="middle", timeout_ms=1000, run_parent=middle_run)

    def top_run(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
        return ParentTaskResult(output=None, children_tasks=[ChildTask(middle, None)])

    top = executor.parent_task(id="top", timeout_ms=1000, run_parent=top_run)
    handle = await executor.enqueue_task(top)
    await wait_completed(handle)
    records = {r.task_id: r for r in await all_records(storage)}
    assert set(records) == {"top", "middle", "leaf"}
    root = TaskRef(task_id="top", execution_id=handle.execution_id)
    assert records["top"].root_task is None
    assert records["middle"].root_task == root
    assert records["leaf"].root_task == root
    assert records["leaf"].parent_task == ParentTaskRef(
        task_id="middle", execution_id=records["middle"].execution_id
    )


async def test_cancelled_parent_never_inserts_its_children(
    make_executor: MakeExecutor, storage: DurableStorage
) -> None:
    """Fixed reference bug: children returned by a run whose parent was cancelled meanwhile are
    not stored (the reference inserted them anyway, as orphans that still ran)."""
    runs = RunCounter()
    parent_started = asyncio.Event()
    release_parent = asyncio.Event()

    def register(executor: DurableExecutor) -> Task[None, ParentTaskOutput[None]]:
        def child_run(ctx: TaskContext, _: None) -> str:
            runs.hit("child")
            return "orphan"

        child = executor.task(id="child", timeout_ms=1000, run=child_run)

        async def run_parent(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
            parent_started.set()
            await release_parent.wait()
            return ParentTaskResult(output=None, children_tasks=[ChildTask(child, None)])

        return executor.parent_task(id="parent", timeout_ms=30_000, run_parent=run_parent)

    # The cancel comes from another process (here: another executor) and the running one has
    # not noticed it yet (its idle checks are far apart), so its run returns its children.
    running = await make_executor(background_process_intra_batch_sleep_ms=60_000)
    elsewhere = await make_executor(start=False)
    parent = register(running)
    register(elsewhere)
    handle = await running.enqueue_task(parent)
    await asyncio.wait_for(parent_started.wait(), timeout=10)
    await (await elsewhere.get_task_handle(parent, handle.execution_id)).cancel()
    release_parent.set()

    await eventually(
        lambda: handle.execution_id not in running.get_running_task_execution_ids(),
        what="the parent's run ended",
    )
    assert [(r.task_id, r.status) for r in await all_records(storage)] == [("parent", "cancelled")]
    assert runs["child"] == 0
