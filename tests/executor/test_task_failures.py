"""Whatever a task raises is a stored failure of its execution, described so a person can act.

``SystemExit``, ``KeyboardInterrupt`` from a sync task's thread, a ``CancelledError`` the task's
code let through, an exception whose ``__str__`` raises: each fails the attempt (and is retried
as configured); the executor keeps running its other attempts, and nothing waits for a lease to
expire as if its process had crashed.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

import pytest

from durable_execution import DurableExecutor, RetryOptions, TaskContext
from durable_execution.model import MAX_ERROR_MESSAGE_BYTES, MAX_TRACEBACK_BYTES
from durable_execution.storage import DurableStorage

from ._support import (
    MakeExecutor,
    RunCounter,
    assert_raised_here,
    get_record,
    wait_completed,
    wait_finished,
)

# Bounds only a hang: without the fix these executions stay running until their lease expires
# (minutes), so the wait fails.
FAILURE_WAIT_MS = 15_000
ONE_RETRY = RetryOptions(max_attempts=1)


class PaymentDeclinedError(Exception):
    pass


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class NotAnExceptionError(BaseException):
    """Derives from BaseException only, like SystemExit: asyncio does not treat it as an error."""


async def _fails_once_per_attempt(
    executor: DurableExecutor,
    storage: DurableStorage,
    # Sync or async: mypy resolves the executor.task overload for each arm of the union.
    run: Callable[[TaskContext, None], None] | Callable[[TaskContext, None], Awaitable[None]],
    *,
    retry_options: RetryOptions = ONE_RETRY,
) -> tuple[str, str | None, str | None, int]:
    """Runs ``run`` as a task (sync or async) until it finished; returns its stored status,
    message, exception type and the number of lease expiries."""
    task = executor.task(id="failing", timeout_ms=10_000, retry_options=retry_options, run=run)
    handle = await executor.enqueue_task(task)
    execution = await wait_finished(handle, timeout_ms=FAILURE_WAIT_MS)
    record = await get_record(storage, handle.execution_id)
    assert record.error is not None, record
    return (
        execution.status,
        record.error.message,
        record.error.exception_type,
        record.lease_expiries,
    )


async def _still_runs_tasks(executor: DurableExecutor) -> None:
    async def echo(ctx: TaskContext, value: str) -> str:
        return value

    task = executor.task(id="echo_after", timeout_ms=5_000, run=echo)
    assert (await wait_completed(await executor.enqueue_task(task, "still here"))).output == (
        "still here"
    )


# --- what is stored ------------------------------------------------------------------------------


async def test_a_builtin_exception_reads_as_its_last_traceback_line(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    def run(ctx: TaskContext, _: None) -> None:
        raise KeyError("sku")

    task = executor.task(id="lookup", timeout_ms=5_000, run=run)
    execution = await wait_finished(await executor.enqueue_task(task))
    assert execution.status == "failed"
    assert execution.error.message == "KeyError: 'sku'"
    assert execution.error.exception_type == "KeyError"
    assert_raised_here(execution.error, "KeyError: 'sku'", 'raise KeyError("sku")')


async def test_a_non_builtin_exception_is_named_with_its_module(
    executor: DurableExecutor,
) -> None:
    async def run(ctx: TaskContext, _: None) -> None:
        raise PaymentDeclinedError("card declined")

    task = executor.task(id="pay", timeout_ms=5_000, run=run)
    execution = await wait_finished(await executor.enqueue_task(task))
    name = f"{PaymentDeclinedError.__module__}.PaymentDeclinedError"
    assert name.endswith("test_task_failures.PaymentDeclinedError")
    assert execution.status == "failed"
    assert execution.error.exception_type == name
    assert execution.error.message == f"{name}: card declined"
    assert_raised_here(
        execution.error, f"{name}: card declined", 'raise PaymentDeclinedError("card declined")'
    )


async def test_a_chained_exception_keeps_its_cause(executor: DurableExecutor) -> None:
    def run(ctx: TaskContext, _: None) -> None:
        stock: dict[str, int] = {}
        try:
            stock["sku"]
        except KeyError as error:
            raise RuntimeError("lookup failed") from error

    task = executor.task(id="chained", timeout_ms=5_000, run=run)
    execution = await wait_finished(await executor.enqueue_task(task))
    assert execution.status == "failed"
    traceback = execution.error.traceback
    assert traceback is not None
    assert "KeyError: 'sku'\n" in traceback
    assert "The above exception was the direct cause of the following exception" in traceback
    assert traceback.endswith("RuntimeError: lookup failed\n")


def _ping(depth: int) -> None:
    if depth == 0:
        raise KeyError("sku")
    _pong(depth - 1)


def _pong(depth: int) -> None:
    _ping(depth - 1)


async def test_a_long_traceback_keeps_its_end(executor: DurableExecutor) -> None:
    # Alternating frames, so that traceback's "[Previous line repeated]" cannot fold them.
    def run(ctx: TaskContext, _: None) -> None:
        _ping(400)

    task = executor.task(id="deep", timeout_ms=5_000, run=run)
    execution = await wait_finished(await executor.enqueue_task(task))
    assert execution.status == "failed"
    traceback = execution.error.traceback
    assert traceback is not None
    assert len(traceback.encode()) <= MAX_TRACEBACK_BYTES
    assert len(traceback.encode()) > MAX_TRACEBACK_BYTES - 500  # truncated, not emptied
    assert traceback.startswith("[traceback truncated: its first ")
    assert traceback.splitlines()[1].startswith("  ")  # cut at a line, not mid-line
    assert traceback.endswith("raise KeyError(\"sku\")\nKeyError: 'sku'\n")
    assert execution.error.message == "KeyError: 'sku'"


async def test_a_huge_message_keeps_its_start_and_says_what_was_cut(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    # A whole payload in an exception's text: the row (and every parent's copy) stays small.
    text = "payload:" + "é" * 500_000 + ":end"

    def run(ctx: TaskContext, _: None) -> None:
        raise ValueError(text)

    task = executor.task(id="chatty", timeout_ms=5_000, run=run)
    handle = await executor.enqueue_task(task)
    execution = await wait_finished(handle)
    assert execution.status == "failed"
    message = execution.error.message
    assert len(message.encode()) <= MAX_ERROR_MESSAGE_BYTES
    assert message.startswith("ValueError: payload:éé")
    full = len(f"ValueError: {text}".encode())
    kept = message[: message.index(" [message truncated")]
    assert message.endswith(
        f" [message truncated: its last {full - len(kept.encode())} bytes are not stored]"
    )
    record = await get_record(storage, handle.execution_id)
    assert record.error is not None
    assert record.error.message == message
    assert record.error.traceback is not None
    assert len(record.error.traceback.encode()) <= MAX_TRACEBACK_BYTES
    assert record.error.traceback.endswith(":end\n")  # the traceback keeps the message's end


async def test_errors_the_library_makes_have_no_type_or_traceback(
    executor: DurableExecutor,
) -> None:
    async def run(ctx: TaskContext, _: None) -> None:
        await asyncio.sleep(10)

    task = executor.task(id="slow", timeout_ms=20, run=run)
    execution = await wait_finished(await executor.enqueue_task(task))
    assert execution.status == "timed_out"
    assert (execution.error.exception_type, execution.error.traceback) == (None, None)


async def test_converting_the_timeouts_cancellation_is_still_a_timeout(
    executor: DurableExecutor,
) -> None:
    async def run(ctx: TaskContext, _: None) -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise ValueError("interrupted") from None

    task = executor.task(id="converts", timeout_ms=20, run=run)
    execution = await wait_finished(await executor.enqueue_task(task))
    assert execution.status == "timed_out"
    assert execution.error.message == "Task timed out"


# --- whatever is raised is a failure -------------------------------------------------------------


async def test_an_exception_whose_str_raises_is_a_failure(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    runs = RunCounter()

    def run(ctx: TaskContext, _: None) -> None:
        runs.hit("failing")
        raise UnprintableError()

    status, message, exception_type, expiries = await _fails_once_per_attempt(
        executor, storage, run
    )
    name = f"{UnprintableError.__module__}.UnprintableError"
    assert (status, message, exception_type) == (
        "failed",
        f"{name}: <exception str() failed>",
        name,
    )
    assert (runs["failing"], expiries) == (2, 0)  # retried as configured, never expired
    await _still_runs_tasks(executor)


async def test_a_cancelled_error_from_an_awaited_task_is_a_failure(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    runs = RunCounter()

    async def run(ctx: TaskContext, _: None) -> None:
        runs.hit("failing")
        inner = asyncio.create_task(asyncio.sleep(10))
        await asyncio.sleep(0)
        inner.cancel()
        await inner  # raises CancelledError here: the attempt itself was not cancelled

    status, message, exception_type, expiries = await _fails_once_per_attempt(
        executor, storage, run
    )
    assert (status, message, exception_type) == (
        "failed",
        "asyncio.exceptions.CancelledError",
        "asyncio.exceptions.CancelledError",
    )
    assert (runs["failing"], expiries) == (2, 0)
    await _still_runs_tasks(executor)


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_system_exit_is_a_failure_and_other_attempts_keep_running(
    kind: str, make_executor: MakeExecutor, storage: DurableStorage
) -> None:
    executor = await make_executor()
    runs = RunCounter()
    slow_started = asyncio.Event()

    async def slow(ctx: TaskContext, _: None) -> str:
        slow_started.set()
        await asyncio.sleep(0.5)
        return "finished"

    slow_task = executor.task(id="slow", timeout_ms=30_000, run=slow)
    slow_handle = await executor.enqueue_task(slow_task)
    await asyncio.wait_for(slow_started.wait(), timeout=10)

    async def exit_async(ctx: TaskContext, _: None) -> None:
        runs.hit("failing")
        sys.exit(3)

    def exit_sync(ctx: TaskContext, _: None) -> None:
        runs.hit("failing")
        sys.exit(3)

    run = exit_async if kind == "async" else exit_sync
    status, message, exception_type, expiries = await _fails_once_per_attempt(
        executor, storage, run
    )
    assert (status, message, exception_type) == ("failed", "SystemExit: 3", "SystemExit")
    assert (runs["failing"], expiries) == (2, 0)
    assert (await wait_completed(slow_handle)).output == "finished"
    await _still_runs_tasks(executor)


async def test_keyboard_interrupt_in_a_sync_task_is_a_failure(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    runs = RunCounter()

    def run(ctx: TaskContext, _: None) -> None:
        runs.hit("failing")
        raise KeyboardInterrupt

    status, message, exception_type, expiries = await _fails_once_per_attempt(
        executor, storage, run
    )
    assert (status, message, exception_type) == (
        "failed",
        "KeyboardInterrupt",
        "KeyboardInterrupt",
    )
    assert (runs["failing"], expiries) == (2, 0)
    await _still_runs_tasks(executor)


async def test_a_base_exception_of_the_tasks_own_is_a_failure(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    async def run(ctx: TaskContext, _: None) -> None:
        raise NotAnExceptionError("odd")

    status, message, exception_type, expiries = await _fails_once_per_attempt(
        executor, storage, run, retry_options=RetryOptions(max_attempts=0)
    )
    name = f"{NotAnExceptionError.__module__}.NotAnExceptionError"
    assert (status, message, exception_type, expiries) == ("failed", f"{name}: odd", name, 0)
    await _still_runs_tasks(executor)
