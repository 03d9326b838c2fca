"""Simple tasks: completion, input checks, failures, retries, timeouts, cancellation, context."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta

import pydantic
import pytest

from durable_execution import (
    DurableExecutionCancelledError,
    DurableExecutionError,
    DurableExecutionTimedOutError,
    DurableExecutor,
    ExecutionErrorInfo,
    RetryOptions,
    TaskContext,
    TaskEnqueueOptions,
)
from durable_execution.storage import DurableStorage

from ._support import (
    MakeExecutor,
    RunCounter,
    all_records,
    assert_execution_id,
    assert_finished_times,
    assert_raised_here,
    assert_utc,
    eventually,
    wait_completed,
    wait_finished,
    without_traceback,
)

# --- completion ---------------------------------------------------------------------------------


async def test_sync_task_completes(executor: DurableExecutor) -> None:
    def run(ctx: TaskContext, name: str) -> str:
        return f"Hello, {name}!"

    task = executor.task(id="test", timeout_ms=1000, run=run)
    handle = await executor.enqueue_task(task, "world")
    assert handle.task_id == "test"
    assert_execution_id(handle.execution_id)

    execution = await wait_completed(handle)
    assert execution.output == "Hello, world!"
    assert execution.run_input == "world"
    assert execution.retry_attempts == 0
    assert execution.children_tasks == ()
    assert execution.root_task is None
    assert execution.parent_task is None


async def test_async_task_completes(executor: DurableExecutor) -> None:
    async def run(ctx: TaskContext, value: int) -> int:
        await asyncio.sleep(0.01)
        return value * 2

    task = executor.task(id="test", timeout_ms=1000, run=run)
    execution = await wait_completed(await executor.enqueue_task(task, 21))
    assert execution.output == 42
    assert execution.timeout_ms == 1000
    assert execution.sleep_ms_before_run == 0
    assert execution.retry_options == RetryOptions(max_attempts=0)


async def test_sync_run_function_runs_off_the_event_loop(executor: DurableExecutor) -> None:
    loop_thread = threading.get_ident()

    def run(ctx: TaskContext, _: None) -> int:
        return threading.get_ident()

    task = executor.task(id="test", timeout_ms=1000, run=run)
    execution = await wait_completed(await executor.enqueue_task(task))
    assert execution.output != loop_thread


async def test_context_echoes_the_execution(executor: DurableExecutor) -> None:
    seen: list[tuple[str, str, int, ExecutionErrorInfo | None]] = []

    async def run(ctx: TaskContext, _: None) -> None:
        seen.append((ctx.task_id, ctx.execution_id, ctx.attempt, ctx.prev_error))

    task = executor.task(id="test", timeout_ms=1000, run=run)
    handle = await executor.enqueue_task(task)
    execution = await wait_completed(handle)
    assert execution.output is None
    assert seen == [("test", handle.execution_id, 0, None)]


async def test_tasks_can_be_registered_with_a_decorator(executor: DurableExecutor) -> None:
    @executor.task(id="decorated", timeout_ms=1000)
    async def decorated(ctx: TaskContext, name: str) -> str:
        return name.upper()

    assert decorated.id == "decorated"
    execution = await wait_completed(await executor.enqueue_task(decorated, "abc"))
    assert execution.output == "ABC"


# --- input validation ---------------------------------------------------------------------------


async def test_validate_input_passes_the_validated_value(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    runs = RunCounter()

    def validate(value: str) -> int:
        if not value.isdigit():
            raise ValueError(f"{value!r} is not a number")
        return int(value)

    def run(ctx: TaskContext, number: int) -> int:
        runs.hit("test")
        return number + 1

    task = executor.validate_input(validate).task(id="test", timeout_ms=1000, run=run)
    execution = await wait_completed(await executor.enqueue_task(task, "41"))
    assert execution.output == 42
    assert execution.run_input == 41  # the validated value is what is stored

    with pytest.raises(DurableExecutionError) as raised:
        await executor.enqueue_task(task, "forty-one")
    assert str(raised.value) == "Invalid input to task test: 'forty-one' is not a number"
    assert raised.value.is_retryable is False
    assert runs["test"] == 1
    assert len(await all_records(storage)) == 1  # the rejected input stored nothing


async def test_async_validate_input(executor: DurableExecutor) -> None:
    async def validate(value: str) -> str:
        await asyncio.sleep(0)
        if not value:
            raise ValueError("empty")
        return value.strip()

    def run(ctx: TaskContext, value: str) -> str:
        return value

    task = executor.validate_input(validate).task(id="test", timeout_ms=1000, run=run)
    execution = await wait_completed(await executor.enqueue_task(task, "  padded  "))
    assert execution.output == "padded"
    with pytest.raises(DurableExecutionError, match=r"^Invalid input to task test: empty"):
        await executor.enqueue_task(task, "")


class Person(pydantic.BaseModel):
    name: str
    age: int


async def test_input_schema_validates_with_pydantic(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    runs = RunCounter()

    def run(ctx: TaskContext, person: Person) -> str:
        runs.hit("test")
        return f"{person.name} is {person.age}"

    task = executor.input_schema(Person).task(id="test", timeout_ms=1000, run=run)
    execution = await wait_completed(await executor.enqueue_task(task, Person(name="Ada", age=36)))
    assert execution.output == "Ada is 36"

    with pytest.raises(DurableExecutionError) as raised:
        await executor.enqueue_task(task, {"name": "Ada", "age": "old"})  # type: ignore[misc]  # deliberately wrong
    assert str(raised.value).startswith("Invalid input to task test")
    assert "age" in str(raised.value)
    assert raised.value.is_retryable is False
    assert runs["test"] == 1
    assert len(await all_records(storage)) == 1


async def test_input_schema_accepts_a_type_adapter(executor: DurableExecutor) -> None:
    def run(ctx: TaskContext, values: list[int]) -> int:
        return sum(values)

    adapter = pydantic.TypeAdapter(list[int])
    task = executor.input_schema(adapter).task(id="test", timeout_ms=1000, run=run)
    execution = await wait_completed(await executor.enqueue_task(task, [1, 2, 3]))
    assert execution.output == 6
    with pytest.raises(DurableExecutionError, match=r"^Invalid input to task test"):
        await executor.enqueue_task(task, ["x"])  # type: ignore[misc]  # deliberately wrong


# --- failures and retries -----------------------------------------------------------------------


async def test_plain_error_fails_the_execution(executor: DurableExecutor) -> None:
    runs = RunCounter()

    def run(ctx: TaskContext, _: None) -> None:
        runs.hit("test")
        raise ValueError("Test error")

    task = executor.task(id="test", timeout_ms=1000, run=run)
    execution = await wait_finished(await executor.enqueue_task(task))
    assert execution.status == "failed"
    # The message reads as the traceback's last line: the type, then the exception's text.
    assert without_traceback(execution.error) == ExecutionErrorInfo(
        error_type="generic",
        message="ValueError: Test error",
        is_retryable=True,
        is_internal=False,
        exception_type="ValueError",
    )
    assert_raised_here(execution.error, "ValueError: Test error", 'raise ValueError("Test error")')
    assert execution.retry_attempts == 0
    assert_finished_times(execution)
    assert runs["test"] == 1


async def test_error_text_no_backend_can_store_is_escaped(executor: DurableExecutor) -> None:
    # PostgreSQL refuses NUL in text/jsonb and no backend stores a lone surrogate; unescaped, the
    # failure could never be written and the execution would be re-run at every lease expiry.
    runs = RunCounter()

    def run(ctx: TaskContext, _: None) -> None:
        runs.hit("test")
        raise ValueError("bad\x00byte \udc80 end")

    task = executor.task(id="test", timeout_ms=1000, run=run)
    execution = await wait_finished(await executor.enqueue_task(task))
    assert execution.status == "failed"
    assert execution.error.message == "ValueError: bad\\x00byte \\udc80 end"
    assert execution.error.traceback is not None
    assert execution.error.traceback.endswith("ValueError: bad\\x00byte \\udc80 end\n")
    assert runs["test"] == 1


async def test_retry_then_complete(executor: DurableExecutor) -> None:
    runs = RunCounter()

    def run(ctx: TaskContext, _: None) -> str:
        if runs.hit("test") == 1:
            raise ValueError("Test error")
        return "test"

    task = executor.task(
        id="test", timeout_ms=1000, retry_options=RetryOptions(max_attempts=1), run=run
    )
    execution = await wait_completed(await executor.enqueue_task(task))
    assert execution.output == "test"
    assert execution.retry_attempts == 1
    assert runs["test"] == 2


async def test_retries_exhausted_fail_with_the_last_error(executor: DurableExecutor) -> None:
    runs = RunCounter()

    def run(ctx: TaskContext, _: None) -> None:
        count = runs.hit("test")
        raise ValueError(f"Test error {count - 1}")

    task = executor.task(
        id="test", timeout_ms=1000, retry_options=RetryOptions(max_attempts=1), run=run
    )
    execution = await wait_finished(await executor.enqueue_task(task))
    assert execution.status == "failed"
    assert execution.error.message == "ValueError: Test error 1"
    assert execution.error.is_retryable is True
    assert execution.retry_attempts == 1
    assert runs["test"] == 2


async def test_non_retryable_error_runs_once(executor: DurableExecutor) -> None:
    runs = RunCounter()

    def run(ctx: TaskContext, _: None) -> None:
        runs.hit("test")
        raise DurableExecutionError("Test error", is_retryable=False)

    task = executor.task(
        id="test", timeout_ms=1000, retry_options=RetryOptions(max_attempts=5), run=run
    )
    execution = await wait_finished(await executor.enqueue_task(task))
    assert execution.status == "failed"
    # A library error raised by the task keeps its own message; its class and traceback say
    # that (and where) the task raised it.
    assert without_traceback(execution.error) == ExecutionErrorInfo(
        error_type="generic",
        message="Test error",
        is_retryable=False,
        is_internal=False,
        exception_type="durable_execution.errors.DurableExecutionError",
    )
    assert_raised_here(
        execution.error,
        "durable_execution.errors.DurableExecutionError: Test error",
        'raise DurableExecutionError("Test error", is_retryable=False)',
    )
    assert execution.retry_attempts == 0
    # Give a wrongly scheduled retry time to happen before checking that none did.
    await asyncio.sleep(0.2)
    assert runs["test"] == 1


async def test_context_reports_attempt_and_previous_error(executor: DurableExecutor) -> None:
    seen: list[tuple[int, ExecutionErrorInfo | None]] = []

    def run(ctx: TaskContext, _: None) -> str:
        seen.append((ctx.attempt, ctx.prev_error))
        if ctx.attempt == 0:
            raise ValueError("Test error")
        return "done"

    task = executor.task(
        id="test", timeout_ms=1000, retry_options=RetryOptions(max_attempts=1), run=run
    )
    execution = await wait_completed(await executor.enqueue_task(task))
    assert execution.output == "done"
    assert [attempt for attempt, _ in seen] == [0, 1]
    assert seen[0][1] is None
    prev_error = seen[1][1]
    assert without_traceback(prev_error) == ExecutionErrorInfo(
        error_type="generic",
        message="ValueError: Test error",
        is_retryable=True,
        exception_type="ValueError",
    )
    assert_raised_here(prev_error, "ValueError: Test error", 'raise ValueError("Test error")')


async def test_retry_backoff_delays(executor: DurableExecutor) -> None:
    """Delays are base * multiplier**n, capped: 100 ms, then min(100 * 10, 150) = 150 ms."""
    attempt_started: list[float] = []
    attempt_failed: list[float] = []

    async def run(ctx: TaskContext, _: None) -> int:
        attempt_started.append(time.monotonic())
        if ctx.attempt < 2:
            attempt_failed.append(time.monotonic())
            raise ValueError(f"attempt {ctx.attempt}")
        return ctx.attempt

    retry = RetryOptions(max_attempts=5, base_delay_ms=100, delay_multiplier=10, max_delay_ms=150)
    task = executor.task(id="test", timeout_ms=1000, retry_options=retry, run=run)
    execution = await wait_completed(await executor.enqueue_task(task))
    assert execution.output == 2
    assert execution.retry_attempts == 2
    first_gap = attempt_started[1] - attempt_failed[0]
    second_gap = attempt_started[2] - attempt_failed[1]
    # Lower bounds are the behaviour (timestamps are whole milliseconds, hence the small slack);
    # the upper bound of the second gap only shows that the cap, not 1000 ms, applied.
    assert first_gap >= 0.095, first_gap
    assert second_gap >= 0.145, second_gap
    assert second_gap < 0.9, second_gap


async def test_sleep_before_run_delays_the_first_attempt_only(executor: DurableExecutor) -> None:
    attempt_started: list[float] = []
    attempt_failed: list[float] = []

    def run(ctx: TaskContext, _: None) -> str:
        attempt_started.append(time.monotonic())
        if ctx.attempt == 0:
            attempt_failed.append(time.monotonic())
            raise ValueError("first attempt fails")
        return "ok"

    task = executor.task(
        id="test",
        timeout_ms=1000,
        sleep_ms_before_run=1000,
        retry_options=RetryOptions(max_attempts=1),
        run=run,
    )
    # Taken before enqueueing: the 1000 ms count from the stored created_at, which a slow enqueue
    # may stamp well before enqueue_task returns.
    enqueued = time.monotonic()
    handle = await executor.enqueue_task(task)
    execution = await wait_completed(handle)
    assert execution.sleep_ms_before_run == 1000
    assert attempt_started[0] - enqueued >= 0.99
    # The retry has no delay and must not sleep again: well under another 1000 ms.
    assert attempt_started[1] - attempt_failed[0] < 0.9


async def test_sleep_before_run_shows_in_timestamps(executor: DurableExecutor) -> None:
    def run(ctx: TaskContext, _: None) -> str:
        return "ok"

    task = executor.task(id="test", timeout_ms=1000, sleep_ms_before_run=250, run=run)
    execution = await wait_completed(await executor.enqueue_task(task))
    assert assert_utc(execution.started_at) >= execution.created_at + timedelta(milliseconds=250)


async def test_negative_sleep_means_no_sleep(executor: DurableExecutor) -> None:
    attempt_started: list[float] = []

    def run(ctx: TaskContext, _: None) -> str:
        attempt_started.append(time.monotonic())
        if ctx.attempt == 0:
            raise ValueError("first attempt fails")
        return "ok"

    task = executor.task(
        id="test",
        timeout_ms=1000,
        sleep_ms_before_run=-10,
        retry_options=RetryOptions(max_attempts=1),
        run=run,
    )
    execution = await wait_completed(await executor.enqueue_task(task))
    assert execution.sleep_ms_before_run == 0
    assert execution.retry_attempts == 1
    # Default base delay is 0: the retry is picked up without any scheduled delay.
    assert 0 <= attempt_started[1] - attempt_started[0] < 0.9


# --- timeouts -----------------------------------------------------------------------------------


async def test_timeout_fails_and_really_cancels_the_run(executor: DurableExecutor) -> None:
    runs = RunCounter()
    got_cancelled = asyncio.Event()

    async def run(ctx: TaskContext, _: None) -> str:
        runs.hit("test")
        try:
            await asyncio.sleep(0.3)
        except asyncio.CancelledError:
            got_cancelled.set()
            raise
        runs.hit("after timeout")
        return "too late"

    task = executor.task(id="test", timeout_ms=10, run=run)
    execution = await wait_finished(await executor.enqueue_task(task))
    assert execution.status == "timed_out"
    assert execution.error == ExecutionErrorInfo(
        error_type="timed_out", message="Task timed out", is_retryable=True
    )
    assert_finished_times(execution)
    await asyncio.wait_for(got_cancelled.wait(), timeout=5)
    await asyncio.sleep(0.5)  # past the point the run would have reached without cancellation
    assert runs["test"] == 1
    assert runs["after timeout"] == 0


async def test_timeout_is_retried_like_any_retryable_error(executor: DurableExecutor) -> None:
    runs = RunCounter()

    async def run(ctx: TaskContext, _: None) -> str:
        runs.hit("test")
        if ctx.attempt == 0:
            await asyncio.sleep(1)
        return "second attempt"

    task = executor.task(
        id="test", timeout_ms=50, retry_options=RetryOptions(max_attempts=1), run=run
    )
    execution = await wait_completed(await executor.enqueue_task(task))
    assert execution.output == "second attempt"
    assert execution.retry_attempts == 1
    assert runs["test"] == 2


async def test_user_raised_timeout_error_is_timed_out(executor: DurableExecutor) -> None:
    def run(ctx: TaskContext, _: None) -> None:
        raise DurableExecutionTimedOutError("upstream timed out", is_retryable=False)

    task = executor.task(
        id="test", timeout_ms=1000, retry_options=RetryOptions(max_attempts=3), run=run
    )
    execution = await wait_finished(await executor.enqueue_task(task))
    assert execution.status == "timed_out"
    assert without_traceback(execution.error) == ExecutionErrorInfo(
        error_type="timed_out",
        message="upstream timed out",
        is_retryable=False,
        exception_type="durable_execution.errors.DurableExecutionTimedOutError",
    )
    assert execution.retry_attempts == 0


async def test_enqueue_timeout_overrides_the_task_default(executor: DurableExecutor) -> None:
    async def run(ctx: TaskContext, _: None) -> str:
        await asyncio.sleep(0.05)
        return "test"

    task = executor.task(id="test", timeout_ms=10, run=run)
    handle = await executor.enqueue_task(task, None, TaskEnqueueOptions(timeout_ms=1000))
    execution = await wait_completed(handle)
    assert execution.output == "test"
    assert execution.timeout_ms == 1000


async def test_enqueue_retry_options_override_the_task_default(executor: DurableExecutor) -> None:
    runs = RunCounter()

    def run(ctx: TaskContext, _: None) -> int:
        runs.hit("test")
        if ctx.attempt < 2:
            raise ValueError("not yet")
        return ctx.attempt

    task = executor.task(id="test", timeout_ms=1000, run=run)
    options = TaskEnqueueOptions(retry_options=RetryOptions(max_attempts=2))
    execution = await wait_completed(await executor.enqueue_task(task, None, options))
    assert execution.output == 2
    assert execution.retry_options == RetryOptions(max_attempts=2)
    assert runs["test"] == 3


async def test_enqueue_sleep_overrides_the_task_default(executor: DurableExecutor) -> None:
    def run(ctx: TaskContext, _: None) -> str:
        return "ok"

    task = executor.task(id="test", timeout_ms=1000, run=run)
    options = TaskEnqueueOptions(sleep_ms_before_run=200)
    execution = await wait_completed(await executor.enqueue_task(task, None, options))
    assert execution.sleep_ms_before_run == 200
    assert assert_utc(execution.started_at) >= execution.created_at + timedelta(milliseconds=200)


# --- cancellation -------------------------------------------------------------------------------


@pytest.mark.parametrize("cancels", [1, 3])
async def test_cancel_before_start(make_executor: MakeExecutor, cancels: int) -> None:
    executor = await make_executor(start=False)
    runs = RunCounter()

    def run(ctx: TaskContext, _: None) -> str:
        runs.hit("test")
        return "test"

    task = executor.task(id="test", timeout_ms=1000, run=run)
    handle = await executor.enqueue_task(task)  # enqueueing does not need a started executor
    await asyncio.gather(*(handle.cancel() for _ in range(cancels)))
    await executor.start()

    execution = await wait_finished(handle)
    assert execution.status == "cancelled"
    assert execution.error == ExecutionErrorInfo(
        error_type="cancelled", message="Task cancelled", is_retryable=False
    )
    assert execution.started_at is None
    assert_utc(execution.finished_at)
    await asyncio.sleep(0.3)  # a cancelled execution must never be claimed
    assert runs["test"] == 0
    assert (await handle.get_execution()).status == "cancelled"


@pytest.mark.parametrize("cancels", [1, 3])
async def test_cancel_running_task_cancels_its_run(executor: DurableExecutor, cancels: int) -> None:
    runs = RunCounter()
    started = asyncio.Event()
    got_cancelled = asyncio.Event()
    saw_cancel_flag: list[bool] = []

    async def run(ctx: TaskContext, _: None) -> str:
        runs.hit("test")
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            saw_cancel_flag.append(ctx.is_cancelled())
            got_cancelled.set()
            raise
        runs.hit("after cancel")
        return "test"

    task = executor.task(id="test", timeout_ms=30_000, run=run)
    handle = await executor.enqueue_task(task)
    await asyncio.wait_for(started.wait(), timeout=10)
    assert handle.execution_id in executor.get_running_task_execution_ids()
    running = await handle.get_execution()
    assert running.status == "running"

    await asyncio.gather(*(handle.cancel() for _ in range(cancels)))
    execution = await handle.get_execution()
    assert execution.status == "cancelled"
    assert execution.error == ExecutionErrorInfo(
        error_type="cancelled", message="Task cancelled", is_retryable=False
    )
    assert_finished_times(execution)

    await asyncio.wait_for(got_cancelled.wait(), timeout=10)
    await eventually(
        lambda: handle.execution_id not in executor.get_running_task_execution_ids(),
        what="the cancelled run left the running set",
    )
    assert saw_cancel_flag == [True]
    assert runs["test"] == 1
    assert runs["after cancel"] == 0
    # The run's cancellation must not overwrite the cancelled status.
    assert (await handle.get_execution()).status == "cancelled"


async def test_cancel_finished_execution_is_a_no_op(executor: DurableExecutor) -> None:
    def run(ctx: TaskContext, _: None) -> str:
        return "done"

    task = executor.task(id="test", timeout_ms=1000, run=run)
    handle = await executor.enqueue_task(task)
    completed = await wait_completed(handle)
    await handle.cancel()
    after = await handle.get_execution()
    assert after.status == "completed"
    # Not updated_at: the closing loop may legitimately bump it after completion.
    assert (after.output, after.finished_at) == (completed.output, completed.finished_at)


async def test_run_can_await_its_cancellation(executor: DurableExecutor) -> None:
    started = asyncio.Event()
    noticed = asyncio.Event()

    async def run(ctx: TaskContext, _: None) -> str:
        started.set()
        try:
            await ctx.wait_for_cancellation()
        except asyncio.CancelledError:
            noticed.set()
            raise
        noticed.set()
        return "noticed"

    task = executor.task(id="test", timeout_ms=30_000, run=run)
    handle = await executor.enqueue_task(task)
    await asyncio.wait_for(started.wait(), timeout=10)
    await handle.cancel()
    await asyncio.wait_for(noticed.wait(), timeout=10)
    assert (await handle.get_execution()).status == "cancelled"


# --- shutdown-aware tasks -----------------------------------------------------------------------


async def test_task_polling_shutdown_ends_cancelled(make_executor: MakeExecutor) -> None:
    executor = await make_executor()
    started = asyncio.Event()

    async def run(ctx: TaskContext, _: None) -> str:
        started.set()
        while not ctx.is_shutdown_requested():  # noqa: ASYNC110 - polling is the point here
            await asyncio.sleep(0.5)
        raise DurableExecutionCancelledError()

    task = executor.task(id="test", timeout_ms=30_000, run=run)
    handle = await executor.enqueue_task(task)
    await asyncio.wait_for(started.wait(), timeout=10)
    began = time.monotonic()
    await executor.shutdown()
    assert time.monotonic() - began < 2.0  # the run notices within one 500 ms poll

    execution = await handle.get_execution()  # handles still work after shutdown
    assert execution.status == "cancelled"
    assert without_traceback(execution.error) == ExecutionErrorInfo(
        error_type="cancelled",
        message="Task cancelled",
        is_retryable=False,
        exception_type="durable_execution.errors.DurableExecutionCancelledError",
    )


async def test_task_awaiting_shutdown_completes_normally(make_executor: MakeExecutor) -> None:
    executor = await make_executor()
    started = asyncio.Event()

    async def run(ctx: TaskContext, _: None) -> str:
        started.set()
        await ctx.wait_for_shutdown()
        return "saw shutdown"

    task = executor.task(id="test", timeout_ms=30_000, run=run)
    handle = await executor.enqueue_task(task)
    await asyncio.wait_for(started.wait(), timeout=10)
    await executor.shutdown()
    execution = await handle.get_execution()
    assert execution.status == "completed"
    assert execution.output == "saw shutdown"
