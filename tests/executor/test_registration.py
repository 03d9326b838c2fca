"""Task ids and options: what registration and enqueueing accept and refuse, and with what message.

Invalid values that the type checker would already refuse are passed through ``cast`` so that the
runtime checks, which protect untyped callers, are exercised too.
"""

from __future__ import annotations

from typing import cast

import pytest

from durable_execution import (
    ChildTask,
    DurableExecutionError,
    DurableExecutor,
    FinalizeTask,
    FinalizeTaskInput,
    ParentTaskResult,
    RetryOptions,
    TaskContext,
    TaskEnqueueOptions,
)
from durable_execution.storage import DurableStorage

from ._support import all_records, wait_completed, wait_finished


def _run(ctx: TaskContext, _: None) -> str:
    return "ok"


def _finalize(ctx: TaskContext, fin: FinalizeTaskInput[None, None]) -> str:
    return "ok"


def _run_parent(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
    return ParentTaskResult(output=None)


def _assert_refused(raised: pytest.ExceptionInfo[DurableExecutionError], prefix: str) -> None:
    assert str(raised.value).startswith(prefix), str(raised.value)
    assert raised.value.is_retryable is False


# --- ids ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("task_id", ["valid_id", "a", "A1_b2", "_", "x" * 255])
async def test_valid_ids_register(executor: DurableExecutor, task_id: str) -> None:
    task = executor.task(id=task_id, timeout_ms=1000, run=_run)
    assert task.id == task_id
    execution = await wait_completed(await executor.enqueue_task(task))
    assert execution.task_id == task_id


@pytest.mark.parametrize(
    ("task_id", "message"),
    [
        ("", "Id cannot be empty"),
        ("x" * 256, "Id cannot be longer than 255 characters"),
        ("invalid-id", "Id can only contain alphanumeric characters and underscores"),
        ("invalid id", "Id can only contain alphanumeric characters and underscores"),
        ("$invalid_id", "Id can only contain alphanumeric characters and underscores"),
        ("invalid_id ", "Id can only contain alphanumeric characters and underscores"),
        ("invalid_id\n", "Id can only contain alphanumeric characters and underscores"),
        ("tâche", "Id can only contain alphanumeric characters and underscores"),
        ("٣", "Id can only contain alphanumeric characters and underscores"),
    ],
)
def test_invalid_ids_are_refused(executor: DurableExecutor, task_id: str, message: str) -> None:
    with pytest.raises(DurableExecutionError) as raised:
        executor.task(id=task_id, timeout_ms=1000, run=_run)
    _assert_refused(raised, message)
    with pytest.raises(DurableExecutionError) as raised:
        executor.parent_task(id=task_id, timeout_ms=1000, run_parent=_run_parent)
    _assert_refused(raised, message)
    with pytest.raises(DurableExecutionError) as raised:
        executor.parent_task(
            id="parent",
            timeout_ms=1000,
            run_parent=_run_parent,
            finalize_task=FinalizeTask(id=task_id, timeout_ms=1000, run=_finalize),
        )
    _assert_refused(raised, message)


def test_duplicate_ids_are_refused(executor: DurableExecutor) -> None:
    executor.task(id="test", timeout_ms=1000, run=_run)
    with pytest.raises(DurableExecutionError) as raised:
        executor.task(id="test", timeout_ms=1000, run=_run)
    _assert_refused(raised, "Task test already exists")
    with pytest.raises(DurableExecutionError) as raised:
        executor.parent_task(id="test", timeout_ms=1000, run_parent=_run_parent)
    _assert_refused(raised, "Task test already exists")


def test_finalize_ids_share_the_namespace(executor: DurableExecutor) -> None:
    executor.parent_task(
        id="parent",
        timeout_ms=1000,
        run_parent=_run_parent,
        finalize_task=FinalizeTask(id="fin", timeout_ms=1000, run=_finalize),
    )
    with pytest.raises(DurableExecutionError) as raised:
        executor.task(id="fin", timeout_ms=1000, run=_run)
    _assert_refused(raised, "Task fin already exists")

    executor.task(id="taken", timeout_ms=1000, run=_run)
    with pytest.raises(DurableExecutionError) as raised:
        executor.parent_task(
            id="other_parent",
            timeout_ms=1000,
            run_parent=_run_parent,
            finalize_task=FinalizeTask(id="taken", timeout_ms=1000, run=_finalize),
        )
    _assert_refused(raised, "Task taken already exists")


def test_finalize_cannot_reuse_its_parents_id(executor: DurableExecutor) -> None:
    """Fixed reference bug: the reference silently replaced such a finalize task by its parent."""
    with pytest.raises(DurableExecutionError) as raised:
        executor.parent_task(
            id="same",
            timeout_ms=1000,
            run_parent=_run_parent,
            finalize_task=FinalizeTask(id="same", timeout_ms=1000, run=_finalize),
        )
    _assert_refused(raised, "Task same already exists")


async def test_refused_registration_registers_nothing(executor: DurableExecutor) -> None:
    with pytest.raises(DurableExecutionError):
        executor.parent_task(
            id="parent",
            timeout_ms=1000,
            run_parent=_run_parent,
            finalize_task=FinalizeTask(id="fin", timeout_ms=0, run=_finalize),
        )
    # Neither id was taken by the failed attempt.
    parent = executor.parent_task(
        id="parent",
        timeout_ms=1000,
        run_parent=_run_parent,
        finalize_task=FinalizeTask(id="fin", timeout_ms=1000, run=_finalize),
    )
    execution = await wait_completed(await executor.enqueue_task(parent))
    assert execution.output == "ok"


# --- registration options -----------------------------------------------------------------------

INVALID_RETRY_OPTIONS = [
    RetryOptions(max_attempts=-5),
    RetryOptions(max_attempts=cast(int, None)),
    RetryOptions(max_attempts=cast(int, 1.5)),
    RetryOptions(max_attempts=1, base_delay_ms=-1),
    RetryOptions(max_attempts=1, base_delay_ms=cast(int, 2.5)),
    RetryOptions(max_attempts=1, delay_multiplier=0.05),
    RetryOptions(max_attempts=1, max_delay_ms=-1),
]


@pytest.mark.parametrize("retry_options", INVALID_RETRY_OPTIONS)
def test_invalid_retry_options_are_refused(
    executor: DurableExecutor, retry_options: RetryOptions
) -> None:
    with pytest.raises(DurableExecutionError) as raised:
        executor.task(id="test", timeout_ms=1000, retry_options=retry_options, run=_run)
    _assert_refused(raised, "Invalid retry options for task test: ")


@pytest.mark.parametrize(
    "retry_options",
    [
        RetryOptions(max_attempts=0),
        RetryOptions(max_attempts=3, base_delay_ms=0, delay_multiplier=0.1, max_delay_ms=0),
        RetryOptions(max_attempts=3, base_delay_ms=10, delay_multiplier=2, max_delay_ms=None),
    ],
)
def test_valid_retry_options_register(
    executor: DurableExecutor, retry_options: RetryOptions
) -> None:
    executor.task(id="test", timeout_ms=1000, retry_options=retry_options, run=_run)


@pytest.mark.parametrize("timeout_ms", [0, -1, cast(int, 1.5), cast(int, None), cast(int, "10")])
def test_invalid_timeouts_are_refused(executor: DurableExecutor, timeout_ms: int) -> None:
    with pytest.raises(DurableExecutionError) as raised:
        executor.task(id="test", timeout_ms=timeout_ms, run=_run)
    _assert_refused(raised, "Invalid timeout value for task test: ")
    with pytest.raises(DurableExecutionError) as raised:
        executor.parent_task(
            id="parent",
            timeout_ms=1000,
            run_parent=_run_parent,
            finalize_task=FinalizeTask(id="fin", timeout_ms=timeout_ms, run=_finalize),
        )
    _assert_refused(raised, "Invalid timeout value for task fin: ")


@pytest.mark.parametrize("sleep_ms", [cast(int, 1.5), cast(int, "10")])
def test_invalid_sleeps_are_refused(executor: DurableExecutor, sleep_ms: int) -> None:
    with pytest.raises(DurableExecutionError) as raised:
        executor.task(id="test", timeout_ms=1000, sleep_ms_before_run=sleep_ms, run=_run)
    _assert_refused(raised, "Invalid sleep ms before run for task test: ")


@pytest.mark.parametrize(("sleep_ms", "stored"), [(-5, 0), (0, 0), (cast(int, None), 0), (7, 7)])
async def test_sleep_values_are_normalised(
    executor: DurableExecutor, sleep_ms: int, stored: int
) -> None:
    task = executor.task(id="test", timeout_ms=1000, sleep_ms_before_run=sleep_ms, run=_run)
    execution = await wait_completed(await executor.enqueue_task(task))
    assert execution.sleep_ms_before_run == stored


# --- enqueue and child options (validated, unlike the reference) --------------------------------

INVALID_ENQUEUE_OPTIONS = [
    (TaskEnqueueOptions(timeout_ms=0), "Invalid timeout value for task {id}: "),
    (TaskEnqueueOptions(timeout_ms=-1), "Invalid timeout value for task {id}: "),
    (TaskEnqueueOptions(timeout_ms=cast(int, 2.5)), "Invalid timeout value for task {id}: "),
    (
        TaskEnqueueOptions(sleep_ms_before_run=cast(int, 1.5)),
        "Invalid sleep ms before run for task {id}: ",
    ),
    (
        TaskEnqueueOptions(retry_options=RetryOptions(max_attempts=-1)),
        "Invalid retry options for task {id}: ",
    ),
    (
        TaskEnqueueOptions(retry_options=RetryOptions(max_attempts=1, delay_multiplier=0)),
        "Invalid retry options for task {id}: ",
    ),
]


@pytest.mark.parametrize(("options", "rule"), INVALID_ENQUEUE_OPTIONS)
async def test_invalid_enqueue_options_are_refused(
    executor: DurableExecutor, storage: DurableStorage, options: TaskEnqueueOptions, rule: str
) -> None:
    task = executor.task(id="test", timeout_ms=1000, run=_run)
    with pytest.raises(DurableExecutionError) as raised:
        await executor.enqueue_task(task, None, options)
    # The registration rule's own message, behind the enqueue prefix.
    _assert_refused(raised, "Invalid enqueue options for task test: " + rule.format(id="test"))
    assert await all_records(storage) == []


async def test_negative_enqueue_sleep_means_no_sleep(executor: DurableExecutor) -> None:
    task = executor.task(id="test", timeout_ms=1000, sleep_ms_before_run=500, run=_run)
    handle = await executor.enqueue_task(task, None, TaskEnqueueOptions(sleep_ms_before_run=-20))
    execution = await wait_completed(handle)
    assert execution.sleep_ms_before_run == 0


@pytest.mark.parametrize(("options", "rule"), INVALID_ENQUEUE_OPTIONS)
async def test_invalid_child_options_fail_the_parent(
    executor: DurableExecutor, options: TaskEnqueueOptions, rule: str
) -> None:
    child = executor.task(id="child", timeout_ms=1000, run=_run)

    def run_parent(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
        return ParentTaskResult(output=None, children_tasks=[ChildTask(child, None, options)])

    parent = executor.parent_task(
        id="parent",
        timeout_ms=1000,
        retry_options=RetryOptions(max_attempts=2),
        run_parent=run_parent,
    )
    execution = await wait_finished(await executor.enqueue_task(parent))
    assert execution.status == "failed"
    assert execution.error.message.startswith(
        "Invalid enqueue options for task child: " + rule.format(id="child")
    )
    assert execution.error.is_retryable is False
    assert execution.retry_attempts == 0


def test_sequential_tasks_needs_tasks(executor: DurableExecutor) -> None:
    with pytest.raises(DurableExecutionError) as raised:
        executor.sequential_tasks()
    _assert_refused(raised, "No tasks provided")


def test_sequential_tasks_of_one_task_is_that_task(executor: DurableExecutor) -> None:
    task = executor.task(id="only", timeout_ms=1000, run=_run)
    assert executor.sequential_tasks(task) is task
