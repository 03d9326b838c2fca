"""``rerun_execution``: a new, linked execution of a finished execution's task, on every backend."""

from __future__ import annotations

import pytest

from durable_execution import (
    ChildTask,
    DurableExecutionError,
    DurableExecutionNotFoundError,
    DurableExecutor,
    FinalizeTask,
    FinalizeTaskInput,
    ParentTaskResult,
    TaskContext,
    rerun_execution,
)
from durable_execution.storage import DurableStorage

from ._support import all_records, get_record, wait_finished


async def test_a_failed_execution_reruns_with_the_same_input_and_a_link(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    broken = {"yes": True}

    def charge(ctx: TaskContext, amount: int) -> int:
        if broken["yes"]:
            raise RuntimeError("payment service down")
        return amount * 100

    task = executor.task(id="charge", timeout_ms=5_000, run=charge)
    handle = await executor.enqueue_task(task, 42)
    assert (await wait_finished(handle)).status == "failed"

    broken["yes"] = False  # the outside system is fixed: run it again
    rerun = await rerun_execution(storage, handle.execution_id)
    assert rerun.execution_id != handle.execution_id
    assert (rerun.task_id, rerun.rerun_of, rerun.status) == ("charge", handle.execution_id, "ready")
    again = await wait_finished(await executor.get_task_handle(task, rerun.execution_id))
    assert again.status == "completed"
    assert again.output == 4200
    # The original is left as it was, and the new row remembers it.
    assert (await get_record(storage, handle.execution_id)).status == "failed"
    assert (await get_record(storage, rerun.execution_id)).rerun_of == handle.execution_id


async def test_a_parent_reruns_its_whole_tree(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    def double(ctx: TaskContext, value: int) -> int:
        return 2 * value

    child = executor.task(id="double", timeout_ms=5_000, run=double)

    def fan_out(ctx: TaskContext, count: int) -> ParentTaskResult[None]:
        return ParentTaskResult(
            output=None, children_tasks=[ChildTask(child, i) for i in range(count)]
        )

    parent = executor.parent_task(id="fan_out", timeout_ms=5_000, run_parent=fan_out)
    first = await executor.enqueue_task(parent, 3)
    assert (await wait_finished(first)).status == "completed"
    rerun = await rerun_execution(storage, first.execution_id)
    assert (
        await wait_finished(await executor.get_task_handle(parent, rerun.execution_id))
    ).status == ("completed")
    records = await all_records(storage)
    new_children = [
        r for r in records if r.parent_task and r.parent_task.execution_id == rerun.execution_id
    ]
    assert sorted(r.run_input for r in new_children) == ["0", "1", "2"]
    assert all(r.status == "completed" for r in new_children)
    assert len(records) == 2 * (1 + 3)  # the first tree is untouched


async def test_active_and_unknown_executions_are_refused(storage: DurableStorage) -> None:
    executor = DurableExecutor(storage)  # never started: the execution stays ready

    def echo(ctx: TaskContext, value: str) -> str:
        return value

    task = executor.task(id="echo", timeout_ms=5_000, run=echo)
    handle = await executor.enqueue_task(task, "x")
    before = await all_records(storage)
    with pytest.raises(DurableExecutionError, match=r"is ready: only a finished execution"):
        await rerun_execution(storage, handle.execution_id)
    with pytest.raises(DurableExecutionNotFoundError, match=r"te_\w+ not found"):
        await rerun_execution(storage, "te_" + "x" * 24)
    with pytest.raises(DurableExecutionNotFoundError, match=r"only letters, digits"):
        await rerun_execution(storage, "te_a\x00b")
    assert await all_records(storage) == before  # nothing was stored


async def test_a_finalize_execution_is_refused_naming_its_parent(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    def parent_run(ctx: TaskContext, value: None) -> ParentTaskResult[str]:
        return ParentTaskResult(output="p")

    def combine(ctx: TaskContext, value: FinalizeTaskInput[None, str]) -> str:
        return value.output

    parent = executor.parent_task(
        id="with_finalize",
        timeout_ms=5_000,
        run_parent=parent_run,
        finalize_task=FinalizeTask(id="combine", timeout_ms=5_000, run=combine),
    )
    handle = await executor.enqueue_task(parent)
    assert (await wait_finished(handle)).status == "completed"
    [finalize] = [r for r in await all_records(storage) if r.task_id == "combine"]
    with pytest.raises(DurableExecutionError, match=r"rerun that parent instead"):
        await rerun_execution(storage, finalize.execution_id)
