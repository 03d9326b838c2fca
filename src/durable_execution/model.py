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
    """An error as it is stored and shown: no traceback, only what survives a round-trip."""

    error_type: ErrorType
    message: str
    is_retryable: bool
    is_internal: bool = False


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
