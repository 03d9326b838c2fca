"""Option validation (registration and enqueue share the rules) and the backoff formula."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any

import pytest

from durable_execution import DurableExecutor, InMemoryStorage, clock
from durable_execution._options import (
    MAX_COUNT,
    MAX_DURATION_MS,
    MAX_RETRY_DELAY_MS,
    ExecutorOptions,
    registration_options,
    resolve_enqueue_options,
    retry_delay_ms,
    should_retry,
    validate_executor_options,
    validate_retry_options,
    validate_sleep_ms_before_run,
    validate_timeout_ms,
)
from durable_execution.errors import DurableExecutionError
from durable_execution.model import NO_RETRIES, RetryOptions
from durable_execution.tasks import TaskContext, TaskDefinition, TaskEnqueueOptions


def _run(ctx: TaskContext, value: int) -> int:
    return value


DEFINITION = TaskDefinition(
    id="test",
    timeout_ms=1000,
    retry_options=RetryOptions(max_attempts=2),
    sleep_ms_before_run=5,
    run=_run,
    is_async=False,
    shape="simple",
)


def test_defaults() -> None:
    options = registration_options(
        "test", timeout_ms=10, retry_options=None, sleep_ms_before_run=None
    )
    assert options.retry_options == NO_RETRIES
    assert options.sleep_ms_before_run == 0
    assert options.timeout_ms == 10


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        (RetryOptions(max_attempts=-5), "max_attempts must be an integer >= 0, got -5"),
        (RetryOptions(max_attempts=None), "max_attempts"),  # type: ignore[arg-type]
        (RetryOptions(max_attempts=True), "max_attempts"),
        (RetryOptions(max_attempts=1, base_delay_ms=-1), "base_delay_ms"),
        (RetryOptions(max_attempts=1, base_delay_ms=1.5), "base_delay_ms"),  # type: ignore[arg-type]
        (RetryOptions(max_attempts=1, delay_multiplier=0.05), "delay_multiplier"),
        (RetryOptions(max_attempts=1, delay_multiplier=float("nan")), "delay_multiplier"),
        (RetryOptions(max_attempts=1, max_delay_ms=-1), "max_delay_ms"),
        ({"max_attempts": 1}, "expected RetryOptions, got dict"),
    ],
)
def test_invalid_retry_options(options: Any, fragment: str) -> None:  # Any: deliberately wrong
    with pytest.raises(DurableExecutionError) as raised:
        validate_retry_options("test", options)
    message = str(raised.value)
    assert message.startswith("Invalid retry options for task test: ")
    assert fragment in message
    assert raised.value.is_retryable is False


def test_valid_retry_options_are_kept() -> None:
    options = RetryOptions(max_attempts=0, base_delay_ms=0, delay_multiplier=0.1, max_delay_ms=0)
    assert validate_retry_options("test", options) is options


@pytest.mark.parametrize(("value", "expected"), [(None, 0), (0, 0), (-5, 0), (250, 250)])
def test_sleep_ms_before_run(value: int | None, expected: int) -> None:
    assert validate_sleep_ms_before_run("test", value) == expected


@pytest.mark.parametrize("value", [1.5, "10", True])
def test_invalid_sleep_ms_before_run(value: object) -> None:
    with pytest.raises(DurableExecutionError, match=r"^Invalid sleep ms before run for task test"):
        validate_sleep_ms_before_run("test", value)


@pytest.mark.parametrize("value", [0, -1, 1.5, None, "5", False])
def test_invalid_timeouts(value: object) -> None:
    with pytest.raises(
        DurableExecutionError, match=r"^Invalid timeout value for task test: timeout_ms must be"
    ):
        validate_timeout_ms("test", value)


def test_enqueue_options_override_defaults_one_by_one() -> None:
    assert resolve_enqueue_options(DEFINITION, None).timeout_ms == 1000
    resolved = resolve_enqueue_options(DEFINITION, TaskEnqueueOptions(timeout_ms=50))
    assert resolved.timeout_ms == 50
    assert resolved.retry_options == RetryOptions(max_attempts=2)
    assert resolved.sleep_ms_before_run == 5
    resolved = resolve_enqueue_options(
        DEFINITION,
        TaskEnqueueOptions(retry_options=RetryOptions(max_attempts=0), sleep_ms_before_run=-3),
    )
    assert resolved.retry_options == NO_RETRIES
    assert resolved.sleep_ms_before_run == 0
    assert resolved.timeout_ms == 1000


@pytest.mark.parametrize(
    ("options", "registration_message"),
    [
        (TaskEnqueueOptions(timeout_ms=0), "Invalid timeout value for task test"),
        (TaskEnqueueOptions(timeout_ms=-1), "Invalid timeout value for task test"),
        (
            TaskEnqueueOptions(retry_options=RetryOptions(max_attempts=-1)),
            "Invalid retry options for task test",
        ),
        (
            TaskEnqueueOptions(sleep_ms_before_run=0.5),  # type: ignore[arg-type]
            "Invalid sleep ms before run for task test",
        ),
    ],
)
def test_invalid_enqueue_options(options: TaskEnqueueOptions, registration_message: str) -> None:
    with pytest.raises(DurableExecutionError) as raised:
        resolve_enqueue_options(DEFINITION, options)
    message = str(raised.value)
    assert message.startswith("Invalid enqueue options for task test: ")
    assert registration_message in message
    assert raised.value.is_retryable is False


def test_backoff_follows_the_reference_example() -> None:
    options = RetryOptions(
        max_attempts=5, base_delay_ms=100, delay_multiplier=1.5, max_delay_ms=1000
    )
    delays = [retry_delay_ms(options, attempt) for attempt in range(7)]
    assert delays == [100, 150, 225, 337.5, 506.25, 759.375, 1000]


def test_backoff_defaults_and_edges() -> None:
    assert retry_delay_ms(RetryOptions(max_attempts=3), 2) == 0
    assert retry_delay_ms(RetryOptions(max_attempts=3, base_delay_ms=10), 5) == 10
    assert retry_delay_ms(RetryOptions(max_attempts=3, base_delay_ms=10, max_delay_ms=4), 0) == 4
    huge = RetryOptions(max_attempts=10_000, base_delay_ms=1000, delay_multiplier=10.0)
    assert retry_delay_ms(huge, 5000) == MAX_RETRY_DELAY_MS


def test_retry_decision() -> None:
    options = RetryOptions(max_attempts=2)
    assert should_retry(options, 0, is_retryable=True)
    assert should_retry(options, 1, is_retryable=True)
    assert not should_retry(options, 2, is_retryable=True)
    assert not should_retry(options, 0, is_retryable=False)
    assert not should_retry(NO_RETRIES, 0, is_retryable=True)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            RetryOptions(max_attempts=2**31),
            "max_attempts must be at most 2147483647 (2**31 - 1), got 2147483648",
        ),
        (
            RetryOptions(max_attempts=1, base_delay_ms=2**40 + 1),
            "base_delay_ms must be at most 1099511627776 (2**40 ms, about 34.8 years)",
        ),
        (RetryOptions(max_attempts=1, max_delay_ms=10**30), "max_delay_ms must be at most"),
        (
            RetryOptions(max_attempts=1, delay_multiplier=1000.5),
            "delay_multiplier must be at most 1000, got 1000.5",
        ),
    ],
)
def test_retry_options_are_bounded(options: RetryOptions, message: str) -> None:
    with pytest.raises(ValueError, match=r"^Invalid retry options for task test: ") as raised:
        validate_retry_options("test", options)
    assert message in str(raised.value)
    assert isinstance(raised.value, DurableExecutionError)
    assert not raised.value.is_retryable


def test_the_largest_values_are_accepted() -> None:
    biggest = RetryOptions(
        max_attempts=MAX_COUNT,
        base_delay_ms=MAX_DURATION_MS,
        delay_multiplier=1000.0,
        max_delay_ms=MAX_DURATION_MS,
    )
    assert validate_retry_options("test", biggest) is biggest
    assert validate_timeout_ms("test", MAX_DURATION_MS) == MAX_DURATION_MS
    assert validate_sleep_ms_before_run("test", MAX_DURATION_MS) == MAX_DURATION_MS
    # The derived timestamps stay storable: a sleep plus a timeout plus a lease margin, from now.
    assert (clock.now() + timedelta(milliseconds=3 * MAX_DURATION_MS)).year < 2200


@pytest.mark.parametrize(
    ("validate", "message"),
    [
        (validate_timeout_ms, "timeout_ms must be at most 1099511627776"),
        (validate_sleep_ms_before_run, "sleep_ms_before_run must be at most 1099511627776"),
    ],
)
def test_durations_are_bounded(validate: Any, message: str) -> None:  # Any: either validator
    with pytest.raises(ValueError, match=message):
        validate("test", sys.maxsize)


def _executor_options(**overrides: object) -> ExecutorOptions:
    values: dict[str, object] = {
        "expire_ms": 1000,
        "background_process_intra_batch_sleep_ms": 100,
        "max_concurrent_task_executions": 10,
        "max_serialized_size_bytes": 1000,
        "max_lease_expiries": 3,
    }
    values.update(overrides)
    return validate_executor_options(
        **values,
        default_expire_ms=300_000,
        default_intra_batch_sleep_ms=500,
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"expire_ms": 2**40 + 1}, "^expire_ms must be at most 1099511627776 \\(2\\*\\*40 ms"),
        ({"expire_ms": 1.5}, "^expire_ms must be an integer, got 1.5$"),
        (
            {"background_process_intra_batch_sleep_ms": 10**30},
            "^background_process_intra_batch_sleep_ms must be at most",
        ),
        ({"max_concurrent_task_executions": 0}, "^max_concurrent_task_executions must be an"),
        ({"max_concurrent_task_executions": 2**31}, "must be at most 2147483647"),
        ({"max_serialized_size_bytes": 2**30 + 1}, "^max_serialized_size_bytes must be at most"),
        ({"max_lease_expiries": 0}, "^max_lease_expiries must be an integer >= 1 or None, got 0$"),
        ({"max_lease_expiries": True}, "^max_lease_expiries must be an integer"),
    ],
)
def test_executor_options_are_checked(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _executor_options(**overrides)


def test_executor_option_defaults_and_none() -> None:
    options = _executor_options(
        expire_ms=0, background_process_intra_batch_sleep_ms=-5, max_lease_expiries=None
    )
    assert (options.expire_ms, options.intra_batch_sleep_ms) == (300_000, 500)
    assert options.max_lease_expiries is None


async def test_handle_waits_are_bounded() -> None:
    executor = DurableExecutor(InMemoryStorage())
    task = executor.task(id="echo", timeout_ms=1000, run=_run)
    handle = await executor.enqueue_task(task, 1)
    with pytest.raises(ValueError, match=r"^timeout_ms must be at most 1099511627776"):
        await handle.wait_and_get_finished_execution(timeout_ms=10**400)
    with pytest.raises(ValueError, match=r"^polling_interval_ms must be None or an integer"):
        await handle.wait_and_get_finished_execution(polling_interval_ms=0.5)  # type: ignore[arg-type]
