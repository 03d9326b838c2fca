"""Value types shared by the executor and the storages.

They live at the bottom of the import graph so that ``storage/`` can describe a stored execution
without importing the executor. Every type is a frozen, slotted dataclass: a record handed to a
storage can never be changed behind its back, which is what lets the in-memory storage commit and
roll back without copying.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

TaskExecutionStatus: TypeAlias = Literal[
    "ready",
    "running",
    "waiting_for_children_tasks",
    "waiting_for_finalize_task",
    "failed",
    "timed_out",
    "children_tasks_failed",
    "finalize_task_failed",
    "completed",
    "cancelled",
]

ACTIVE_STATUSES: Final[tuple[TaskExecutionStatus, ...]] = (
    "ready",
    "running",
    "waiting_for_children_tasks",
    "waiting_for_finalize_task",
)
FINISHED_STATUSES: Final[tuple[TaskExecutionStatus, ...]] = (
    "failed",
    "timed_out",
    "children_tasks_failed",
    "finalize_task_failed",
    "completed",
    "cancelled",
)
ALL_STATUSES: Final[tuple[TaskExecutionStatus, ...]] = ACTIVE_STATUSES + FINISHED_STATUSES

ErrorType: TypeAlias = Literal["generic", "not_found", "timed_out", "cancelled"]
ERROR_TYPES: Final[tuple[ErrorType, ...]] = ("generic", "not_found", "timed_out", "cancelled")


@dataclass(frozen=True, slots=True)
class RetryOptions:
    """How often and how fast a failed attempt is retried.

    ``max_attempts`` counts *retries*: a task runs at most ``max_attempts + 1`` times. The delay
    before retry ``n`` (0-based) is ``base_delay_ms * delay_multiplier ** n``, capped by
    ``max_delay_ms``.
    """

    max_attempts: int
    base_delay_ms: int = 0
    delay_multiplier: float = 1.0
    max_delay_ms: int | None = None


NO_RETRIES: Final = RetryOptions(max_attempts=0)


@dataclass(frozen=True, slots=True)
class ExecutionErrorInfo:
    """An error as it is stored and shown.

    ``message`` is what a person reads first: a :class:`DurableExecutionError`'s own message, or
    ``Type: text`` for any other exception (``KeyError: 'sku'``), as the last line of a Python
    traceback reads; at most :data:`MAX_ERROR_MESSAGE_BYTES` of its start. ``exception_type``
    and ``traceback`` describe an exception the task's code raised: its class (``KeyError`` for
    builtins, ``myapp.errors.PaymentDeclined`` otherwise, module and qualified name) and the
    formatted traceback of the failed attempt, at most
    :data:`MAX_TRACEBACK_BYTES` of its end. Errors the library makes itself (timeouts, lease
    expiries, cancellations, unknown tasks) have neither. A parent's copy of a child's error
    (``children_tasks_errors``, ``finalize_task_error``) drops the traceback: the child's own
    execution keeps it.
    """

    error_type: ErrorType
    message: str
    is_retryable: bool
    is_internal: bool = False
    exception_type: str | None = None
    traceback: str | None = None


# Enough for the deepest frames of any realistic traceback; bounded so that a recursion error's
# thousand frames cannot bloat a row (the end is kept: it holds the raising frame).
MAX_TRACEBACK_BYTES: Final = 16 * 1024
# A message is what a person reads first, and a parent keeps a copy of each child's: bounded so
# that an exception carrying a whole payload in its text cannot bloat a row (the start is kept).
MAX_ERROR_MESSAGE_BYTES: Final = 4 * 1024


@dataclass(frozen=True, slots=True)
class TaskRef:
    """Points at one execution of one task."""

    task_id: str
    execution_id: str


@dataclass(frozen=True, slots=True)
class ParentTaskRef:
    """Points at the parent of a child or finalize execution."""

    task_id: str
    execution_id: str
    is_finalize_task: bool = False


@dataclass(frozen=True, slots=True)
class ChildTaskError:
    """Why the child at ``index`` of a parent's ``children_tasks`` did not complete."""

    index: int
    task_id: str
    execution_id: str
    error: ExecutionErrorInfo
