"""Validation of task options (at registration and per enqueue) and the retry backoff formula.

The same rules apply wherever an option comes from — a task definition, ``enqueue_task`` or a
child — so a bad value is refused before anything is stored (the reference forgot enqueue
options).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, TypeGuard

from durable_execution.errors import DurableExecutionError
from durable_execution.model import NO_RETRIES, RetryOptions
from durable_execution.tasks import TaskDefinition, TaskEnqueueOptions


@dataclass(frozen=True, slots=True)
class ExecutionOptions:
    """The options one execution is stored with."""

    retry_options: RetryOptions
    sleep_ms_before_run: int
    timeout_ms: int


# Longer delays are clamped: a runaway multiplier must not overflow the datetime arithmetic.
MAX_RETRY_DELAY_MS: Final = 365 * 24 * 3600 * 1000.0


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[int | float]:
    if _is_int(value):
        return True
    return isinstance(value, float) and math.isfinite(value)


def _invalid(message: str) -> DurableExecutionError:
    return DurableExecutionError(message, is_retryable=False)


def validate_retry_options(task_id: str, value: object) -> RetryOptions:
    """``None`` means no retries; anything else must be a well-formed :class:`RetryOptions`."""
    if value is None:
        return NO_RETRIES
    prefix = f"Invalid retry options for task {task_id}"
    if not isinstance(value, RetryOptions):
        raise _invalid(f"{prefix}: expected RetryOptions, got {type(value).__name__}")
    if not _is_int(value.max_attempts) or value.max_attempts < 0:
        raise _invalid(
            f"{prefix}: max_attempts must be an integer >= 0, got {value.max_attempts!r}"
        )
    if not _is_int(value.base_delay_ms) or value.base_delay_ms < 0:
        raise _invalid(
            f"{prefix}: base_delay_ms must be an integer >= 0, got {value.base_delay_ms!r}"
        )
    if not _is_number(value.delay_multiplier) or value.delay_multiplier < 0.1:
        raise _invalid(
            f"{prefix}: delay_multiplier must be a number >= 0.1, got {value.delay_multiplier!r}"
        )
    if value.max_delay_ms is not None and (
        not _is_int(value.max_delay_ms) or value.max_delay_ms < 0
    ):
        raise _invalid(
            f"{prefix}: max_delay_ms must be None or an integer >= 0, got {value.max_delay_ms!r}"
        )
    return value


def validate_sleep_ms_before_run(task_id: str, value: object) -> int:
    """``None`` and values <= 0 mean "no sleep"; non-integers are refused."""
    if value is None:
        return 0
    if not _is_int(value):
        raise _invalid(
            f"Invalid sleep ms before run for task {task_id}:"
            f" sleep_ms_before_run must be an integer, got {value!r}"
        )
    return max(0, value)


def validate_timeout_ms(task_id: str, value: object) -> int:
    if not _is_int(value) or value < 1:
        raise _invalid(
            f"Invalid timeout value for task {task_id}: timeout_ms must be an integer >= 1,"
            f" got {value!r}"
        )
    return value


def registration_options(
    task_id: str, *, timeout_ms: object, retry_options: object, sleep_ms_before_run: object
) -> ExecutionOptions:
    return ExecutionOptions(
        retry_options=validate_retry_options(task_id, retry_options),
        sleep_ms_before_run=validate_sleep_ms_before_run(task_id, sleep_ms_before_run),
        timeout_ms=validate_timeout_ms(task_id, timeout_ms),
    )


def resolve_enqueue_options(
    definition: TaskDefinition, options: TaskEnqueueOptions | None
) -> ExecutionOptions:
    """The task's defaults with the given overrides, each validated like at registration."""
    resolved = ExecutionOptions(
        retry_options=definition.retry_options,
        sleep_ms_before_run=definition.sleep_ms_before_run,
        timeout_ms=definition.timeout_ms,
    )
    if options is None:
        return resolved
    task_id = definition.id
    try:
        if not isinstance(options, TaskEnqueueOptions):
            raise _invalid(f"expected TaskEnqueueOptions, got {type(options).__name__}")
        return ExecutionOptions(
            retry_options=resolved.retry_options
            if options.retry_options is None
            else validate_retry_options(task_id, options.retry_options),
            sleep_ms_before_run=resolved.sleep_ms_before_run
            if options.sleep_ms_before_run is None
            else validate_sleep_ms_before_run(task_id, options.sleep_ms_before_run),
            timeout_ms=resolved.timeout_ms
            if options.timeout_ms is None
            else validate_timeout_ms(task_id, options.timeout_ms),
        )
    except DurableExecutionError as error:
        # Keeps the registration message (same rule, same words) behind the enqueue prefix.
        raise _invalid(f"Invalid enqueue options for task {task_id}: {error.message}") from None


def retry_delay_ms(options: RetryOptions, retry_attempts: int) -> float:
    """Delay before the retry that follows ``retry_attempts`` earlier retries (0 for the first).

    ``base_delay_ms * delay_multiplier ** retry_attempts``, capped by ``max_delay_ms``; no jitter.
    """
    delay = float(options.base_delay_ms)
    if retry_attempts > 0 and delay > 0:
        try:
            delay *= options.delay_multiplier**retry_attempts
        except OverflowError:
            delay = MAX_RETRY_DELAY_MS
    if options.max_delay_ms is not None:
        delay = min(delay, float(options.max_delay_ms))
    return min(delay, MAX_RETRY_DELAY_MS)


def should_retry(options: RetryOptions, retry_attempts: int, is_retryable: bool) -> bool:
    return is_retryable and retry_attempts < options.max_attempts
