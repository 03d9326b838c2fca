"""Validation of task and executor options, and the retry backoff formula.

The same rules apply wherever an option comes from — a task definition, ``enqueue_task`` or a
child — so a bad value is refused before anything is stored (the reference forgot enqueue
options).

Every duration and count has an upper bound as well, so that the values derived from it stay
storable: ``start_at = now + sleep_ms_before_run``, ``expires_at = now + timeout_ms + expire_ms``
and retry delays are computed by the executor (Python ``datetime``: years 1-9999) and by the claim
statement (PostgreSQL ``bigint`` milliseconds and ``interval``; SQLite 64-bit integers). One
enqueued ``timeout_ms=sys.maxsize`` used to make every claim fail on that row, forever.

* durations: at most :data:`MAX_DURATION_MS` = 2**40 ms (about 34.8 years). Far beyond any real
  timeout or delay, and two of them added to today's date stay below the year 2100, inside every
  range above by orders of magnitude;
* counts (``max_attempts``, ``max_lease_expiries``, concurrency): at most 2**31 - 1, what the
  PostgreSQL ``integer`` columns that count attempts and lease expiries store;
* ``delay_multiplier``: at most 1000 (1 ms times 1000**4 already exceeds the longest delay);
* ``max_serialized_size_bytes``: at most 2**30, PostgreSQL's limit for one text value (1 GB).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
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
    priority: int = 0
    idempotency_key: str | None = None


# Longer delays are clamped: a runaway multiplier must not overflow the datetime arithmetic.
MAX_RETRY_DELAY_MS: Final = 365 * 24 * 3600 * 1000.0
MAX_DURATION_MS: Final = 2**40
MAX_COUNT: Final = 2**31 - 1
MAX_DELAY_MULTIPLIER: Final = 1000.0
MAX_SERIALIZED_SIZE_BYTES: Final = 2**30
# The PostgreSQL `integer` column.
MIN_PRIORITY: Final = -(2**31)
MAX_PRIORITY: Final = 2**31 - 1
# Room for a schedule's `schedule:<id>:<tick>` or a hash, small enough for every index entry.
MAX_IDEMPOTENCY_KEY_LENGTH: Final = 255


class InvalidOptionError(DurableExecutionError, ValueError):
    """A task or executor option out of its type or range: never retryable, and a ValueError
    for callers that check arguments the usual Python way."""

    def __init__(self, message: str) -> None:
        super().__init__(message, is_retryable=False)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[int | float]:
    if _is_int(value):
        return True
    return isinstance(value, float) and math.isfinite(value)


def _invalid(message: str) -> InvalidOptionError:
    return InvalidOptionError(message)


def _too_large(name: str, value: float, limit: float, unit: str) -> InvalidOptionError | None:
    if value <= limit:
        return None
    shown = f"{limit:g}" if isinstance(limit, float) else str(limit)
    return _invalid(f"{name} must be at most {shown}{unit}, got {value!r}")


_DURATION_LIMIT: Final = " (2**40 ms, about 34.8 years)"
_COUNT_LIMIT: Final = " (2**31 - 1)"


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
    bounds = (
        ("max_attempts", value.max_attempts, MAX_COUNT, _COUNT_LIMIT),
        ("base_delay_ms", value.base_delay_ms, MAX_DURATION_MS, _DURATION_LIMIT),
        ("max_delay_ms", value.max_delay_ms or 0, MAX_DURATION_MS, _DURATION_LIMIT),
        ("delay_multiplier", value.delay_multiplier, MAX_DELAY_MULTIPLIER, ""),
    )
    for name, number, limit, unit in bounds:
        error = _too_large(name, number, limit, unit)
        if error is not None:
            raise _invalid(f"{prefix}: {error.message}")
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
    error = _too_large("sleep_ms_before_run", value, MAX_DURATION_MS, _DURATION_LIMIT)
    if error is not None:
        raise _invalid(f"Invalid sleep ms before run for task {task_id}: {error.message}")
    return max(0, value)


def validate_timeout_ms(task_id: str, value: object) -> int:
    if not _is_int(value) or value < 1:
        raise _invalid(
            f"Invalid timeout value for task {task_id}: timeout_ms must be an integer >= 1,"
            f" got {value!r}"
        )
    error = _too_large("timeout_ms", value, MAX_DURATION_MS, _DURATION_LIMIT)
    if error is not None:
        raise _invalid(f"Invalid timeout value for task {task_id}: {error.message}")
    return value


def validate_priority(task_id: str, value: object) -> int:
    if not _is_int(value) or not MIN_PRIORITY <= value <= MAX_PRIORITY:
        raise _invalid(
            f"Invalid priority for task {task_id}: priority must be an integer from -2**31 to"
            f" 2**31 - 1 (higher runs first), got {value!r}"
        )
    return value


def validate_idempotency_key(task_id: str, value: object) -> str:
    prefix = f"Invalid idempotency key for task {task_id}"
    if not isinstance(value, str):
        raise _invalid(f"{prefix}: idempotency_key must be a str, got {type(value).__name__}")
    if not value:
        raise _invalid(f"{prefix}: idempotency_key must not be empty")
    if len(value) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise _invalid(
            f"{prefix}: idempotency_key must be at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters,"
            f" got {len(value)}"
        )
    # What the databases cannot store: PostgreSQL text holds no NUL, and neither stores a lone
    # surrogate (not encodable as UTF-8).
    if "\x00" in value or _unencodable(value):
        raise _invalid(f"{prefix}: idempotency_key {value!r} holds a NUL or a lone surrogate")
    return value


def _unencodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def registration_options(
    task_id: str, *, timeout_ms: object, retry_options: object, sleep_ms_before_run: object
) -> ExecutionOptions:
    return ExecutionOptions(
        retry_options=validate_retry_options(task_id, retry_options),
        sleep_ms_before_run=validate_sleep_ms_before_run(task_id, sleep_ms_before_run),
        timeout_ms=validate_timeout_ms(task_id, timeout_ms),
    )


def resolve_enqueue_options(
    definition: TaskDefinition,
    options: TaskEnqueueOptions | None,
    *,
    default_priority: int = 0,
    child: bool = False,
) -> ExecutionOptions:
    """The task's defaults with the given overrides, each validated like at registration.

    ``default_priority``: the priority when ``options`` sets none (a child's parent's). A
    ``child``'s options may not hold an idempotency key (keys are for enqueued executions)."""
    resolved = ExecutionOptions(
        retry_options=definition.retry_options,
        sleep_ms_before_run=definition.sleep_ms_before_run,
        timeout_ms=definition.timeout_ms,
        priority=default_priority,
    )
    if options is None:
        return resolved
    task_id = definition.id
    try:
        if not isinstance(options, TaskEnqueueOptions):
            raise _invalid(f"expected TaskEnqueueOptions, got {type(options).__name__}")
        if child and options.idempotency_key is not None:
            raise _invalid(
                f"idempotency_key is for enqueue_task and enqueue_tasks, not children (child task"
                f" {task_id} got {options.idempotency_key!r}): a child belongs to its parent's"
                " execution, which is the one to enqueue with a key"
            )
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
            priority=resolved.priority
            if options.priority is None
            else validate_priority(task_id, options.priority),
            idempotency_key=None
            if options.idempotency_key is None
            else validate_idempotency_key(task_id, options.idempotency_key),
        )
    except DurableExecutionError as error:
        # Keeps the registration message (same rule, same words) behind the enqueue prefix.
        raise _invalid(f"Invalid enqueue options for task {task_id}: {error.message}") from None


def options_per_input(
    task_id: str,
    count: int,
    options: TaskEnqueueOptions | Sequence[TaskEnqueueOptions | None] | None,
) -> Sequence[TaskEnqueueOptions | None]:
    """One options (or ``None``) per input of an ``enqueue_tasks`` of ``count`` inputs: it takes
    one for all, or a sequence with one per input (how each input gets its own idempotency key;
    one key for several inputs would make them all one execution, and is refused)."""
    prefix = f"Invalid enqueue options for task {task_id}"
    if options is None or isinstance(options, TaskEnqueueOptions):
        if options is not None and options.idempotency_key is not None and count > 1:
            raise _invalid(
                f"{prefix}: one idempotency_key for {count} inputs would make them all one"
                " execution; pass a list of TaskEnqueueOptions, one per input, to give each"
                " input its own key"
            )
        return [options] * count
    if isinstance(options, str | bytes) or not isinstance(options, Sequence):
        raise _invalid(
            f"{prefix}: expected TaskEnqueueOptions, a sequence of them (one per input) or None,"
            f" got {type(options).__name__}"
        )
    if len(options) != count:
        raise _invalid(
            f"{prefix}: {len(options)} options for {count} inputs (a sequence of options needs"
            " exactly one per input)"
        )
    return options


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


def check_wait_ms(name: str, value: int | None) -> None:
    """A handle's wait durations: ``None`` or an integer (non-positive means "no wait") up to
    :data:`MAX_DURATION_MS`, which asyncio's float seconds hold exactly."""
    if value is None:
        return
    if not _is_int(value):
        raise _invalid(f"{name} must be None or an integer, got {value!r}")
    error = _too_large(name, value, MAX_DURATION_MS, _DURATION_LIMIT)
    if error is not None:
        raise error


@dataclass(frozen=True, slots=True)
class ExecutorOptions:
    """The executor's own options, validated (see ``DurableExecutor``)."""

    expire_ms: int
    intra_batch_sleep_ms: int
    max_concurrent_task_executions: int
    max_serialized_size_bytes: int
    max_lease_expiries: int | None
    retention: timedelta | None


def _retention(value: object) -> timedelta | None:
    if value is None:
        return None
    if not isinstance(value, timedelta):
        raise _invalid(f"retention must be a datetime.timedelta or None, got {value!r}")
    if value <= timedelta(0):
        raise _invalid(f"retention must be positive (or None to keep everything), got {value!r}")
    return value


def _executor_int(
    name: str, value: object, low: int, high: int, unit: str = "", *, nullable: bool = False
) -> int:
    if not _is_int(value) or value < low:
        lowest = "" if low < 0 else f" >= {low}"
        alternative = " or None" if nullable else ""
        raise _invalid(f"{name} must be an integer{lowest}{alternative}, got {value!r}")
    error = _too_large(name, value, high, unit)
    if error is not None:
        raise error
    return value


def validate_max_serialized_size_bytes(value: object) -> int:
    """The executor's (and a ``SyncClient``'s) limit on one serialized input or output."""
    return _executor_int(
        "max_serialized_size_bytes",
        value,
        1,
        MAX_SERIALIZED_SIZE_BYTES,
        " (2**30, PostgreSQL's limit for one text value)",
    )


def validate_executor_options(
    *,
    expire_ms: object,
    background_process_intra_batch_sleep_ms: object,
    max_concurrent_task_executions: object,
    max_serialized_size_bytes: object,
    max_lease_expiries: object,
    default_expire_ms: int,
    default_intra_batch_sleep_ms: int,
    retention: object = None,
) -> ExecutorOptions:
    """Non-positive ``expire_ms`` and sleep fall back to the defaults (as in the reference)."""
    expire = _executor_int("expire_ms", expire_ms, -(2**63), MAX_DURATION_MS, _DURATION_LIMIT)
    sleep = _executor_int(
        "background_process_intra_batch_sleep_ms",
        background_process_intra_batch_sleep_ms,
        -(2**63),
        MAX_DURATION_MS,
        _DURATION_LIMIT,
    )
    return ExecutorOptions(
        expire_ms=expire if expire > 0 else default_expire_ms,
        intra_batch_sleep_ms=sleep if sleep > 0 else default_intra_batch_sleep_ms,
        max_concurrent_task_executions=_executor_int(
            "max_concurrent_task_executions",
            max_concurrent_task_executions,
            1,
            MAX_COUNT,
            _COUNT_LIMIT,
        ),
        max_serialized_size_bytes=validate_max_serialized_size_bytes(max_serialized_size_bytes),
        max_lease_expiries=None
        if max_lease_expiries is None
        else _executor_int(
            "max_lease_expiries", max_lease_expiries, 1, MAX_COUNT, _COUNT_LIMIT, nullable=True
        ),
        retention=_retention(retention),
    )
