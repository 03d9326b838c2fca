"""Public views of stored executions: one frozen type per status, a union tagged by ``status``.

Narrowing on ``status`` gives the fields that status guarantees::

    execution = await handle.wait_and_get_finished_execution()
    if execution.status == "completed":
        use(execution.output)  # typed as the task's output

Inputs and outputs are deserialized; storage-only bookkeeping (``is_closed``, ``version``,
``start_at``, ``needs_promise_cancellation``, the completed-children counter) is not shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Literal, TypeAlias, TypeVar

from durable_execution.errors import DurableExecutionError
from durable_execution.model import (
    ChildTaskError,
    ExecutionErrorInfo,
    ParentTaskRef,
    RetryOptions,
    TaskRef,
)
from durable_execution.serializer import CheckedSerializer
from durable_execution.storage.types import TaskExecutionRecord

OutputT_co = TypeVar("OutputT_co", covariant=True)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, kw_only=True)
class _ExecutionBase:
    task_id: str
    execution_id: str
    root_task: TaskRef | None
    parent_task: ParentTaskRef | None
    retry_options: RetryOptions
    sleep_ms_before_run: int
    timeout_ms: int
    run_input: object
    retry_attempts: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadyExecution(_ExecutionBase):
    """Waiting to be picked up; ``error`` is the previous attempt's, if this is a retry."""

    status: Literal["ready"] = "ready"
    error: ExecutionErrorInfo | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunningExecution(_ExecutionBase):
    status: Literal["running"] = "running"
    error: ExecutionErrorInfo | None = None
    started_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class FailedExecution(_ExecutionBase):
    status: Literal["failed"] = "failed"
    error: ExecutionErrorInfo
    started_at: datetime
    finished_at: datetime
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TimedOutExecution(_ExecutionBase):
    status: Literal["timed_out"] = "timed_out"
    error: ExecutionErrorInfo
    started_at: datetime
    finished_at: datetime
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitingForChildrenTasksExecution(_ExecutionBase):
    status: Literal["waiting_for_children_tasks"] = "waiting_for_children_tasks"
    run_output: object
    children_tasks: tuple[TaskRef, ...]
    started_at: datetime
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildrenTasksFailedExecution(_ExecutionBase):
    """A child did not complete; ``children_tasks_errors`` lists every child that failed so far."""

    status: Literal["children_tasks_failed"] = "children_tasks_failed"
    run_output: object
    children_tasks: tuple[TaskRef, ...]
    children_tasks_errors: tuple[ChildTaskError, ...]
    started_at: datetime
    finished_at: datetime
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitingForFinalizeTaskExecution(_ExecutionBase):
    status: Literal["waiting_for_finalize_task"] = "waiting_for_finalize_task"
    run_output: object
    children_tasks: tuple[TaskRef, ...]
    finalize_task: TaskRef
    started_at: datetime
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FinalizeTaskFailedExecution(_ExecutionBase):
    status: Literal["finalize_task_failed"] = "finalize_task_failed"
    run_output: object
    children_tasks: tuple[TaskRef, ...]
    finalize_task: TaskRef
    finalize_task_error: ExecutionErrorInfo
    started_at: datetime
    finished_at: datetime
    expires_at: datetime | None = None


# No slots: with slots, a frozen generic dataclass cannot be instantiated as Cls[T](...).
@dataclass(frozen=True, kw_only=True)
class CompletedExecution(_ExecutionBase, Generic[OutputT_co]):
    status: Literal["completed"] = "completed"
    output: OutputT_co
    run_output: object
    children_tasks: tuple[TaskRef, ...] = ()
    finalize_task: TaskRef | None = None
    started_at: datetime
    finished_at: datetime
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelledExecution(_ExecutionBase):
    """Cancelled by a user or because its parent failed; may have been cancelled before starting."""

    status: Literal["cancelled"] = "cancelled"
    error: ExecutionErrorInfo
    run_output: object = None
    children_tasks: tuple[TaskRef, ...] | None = None
    children_tasks_errors: tuple[ChildTaskError, ...] = ()
    finalize_task: TaskRef | None = None
    finalize_task_error: ExecutionErrorInfo | None = None
    started_at: datetime | None = None
    finished_at: datetime
    expires_at: datetime | None = None


FinishedTaskExecution: TypeAlias = (
    FailedExecution
    | TimedOutExecution
    | ChildrenTasksFailedExecution
    | FinalizeTaskFailedExecution
    | CompletedExecution[OutputT_co]
    | CancelledExecution
)

ActiveTaskExecution: TypeAlias = (
    ReadyExecution
    | RunningExecution
    | WaitingForChildrenTasksExecution
    | WaitingForFinalizeTaskExecution
)

TaskExecution: TypeAlias = ActiveTaskExecution | FinishedTaskExecution[OutputT_co]


def _required(record: TaskExecutionRecord, name: str, value: _T | None) -> _T:
    if value is None:
        raise DurableExecutionError(
            f"Execution {record.execution_id} is malformed: status {record.status} without {name}",
            is_retryable=False,
        )
    return value


def execution_from_record(
    record: TaskExecutionRecord, serializer: CheckedSerializer
) -> TaskExecution[object]:
    """The public view of ``record``; its output type is the caller's to assert."""
    common = _ExecutionBase(
        task_id=record.task_id,
        execution_id=record.execution_id,
        root_task=record.root_task,
        parent_task=record.parent_task,
        retry_options=record.retry_options,
        sleep_ms_before_run=record.sleep_ms_before_run,
        timeout_ms=record.timeout_ms,
        run_input=serializer.deserialize(record.run_input),
        retry_attempts=record.retry_attempts,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )
    base = {name: getattr(common, name) for name in _ExecutionBase.__dataclass_fields__}

    def run_output() -> object:
        return None if record.run_output is None else serializer.deserialize(record.run_output)

    def started_at() -> datetime:
        return _required(record, "started_at", record.started_at)

    def finished_at() -> datetime:
        return _required(record, "finished_at", record.finished_at)

    def error() -> ExecutionErrorInfo:
        return _required(record, "error", record.error)

    children = record.children_tasks or ()
    match record.status:
        case "ready":
            return ReadyExecution(**base, error=record.error)
        case "running":
            return RunningExecution(
                **base,
                error=record.error,
                started_at=started_at(),
                expires_at=_required(record, "expires_at", record.expires_at),
            )
        case "failed":
            return FailedExecution(
                **base,
                error=error(),
                started_at=started_at(),
                finished_at=finished_at(),
                expires_at=record.expires_at,
            )
        case "timed_out":
            return TimedOutExecution(
                **base,
                error=error(),
                started_at=started_at(),
                finished_at=finished_at(),
                expires_at=record.expires_at,
            )
        case "waiting_for_children_tasks":
            return WaitingForChildrenTasksExecution(
                **base,
                run_output=run_output(),
                children_tasks=children,
                started_at=started_at(),
                expires_at=record.expires_at,
            )
        case "children_tasks_failed":
            return ChildrenTasksFailedExecution(
                **base,
                run_output=run_output(),
                children_tasks=children,
                children_tasks_errors=record.children_tasks_errors or (),
                started_at=started_at(),
                finished_at=finished_at(),
                expires_at=record.expires_at,
            )
        case "waiting_for_finalize_task":
            return WaitingForFinalizeTaskExecution(
                **base,
                run_output=run_output(),
                children_tasks=children,
                finalize_task=_required(record, "finalize_task", record.finalize_task),
                started_at=started_at(),
                expires_at=record.expires_at,
            )
        case "finalize_task_failed":
            return FinalizeTaskFailedExecution(
                **base,
                run_output=run_output(),
                children_tasks=children,
                finalize_task=_required(record, "finalize_task", record.finalize_task),
                finalize_task_error=_required(
                    record, "finalize_task_error", record.finalize_task_error
                ),
                started_at=started_at(),
                finished_at=finished_at(),
                expires_at=record.expires_at,
            )
        case "completed":
            return CompletedExecution(
                **base,
                output=serializer.deserialize(_required(record, "output", record.output)),
                run_output=run_output(),
                children_tasks=children,
                finalize_task=record.finalize_task,
                started_at=started_at(),
                finished_at=finished_at(),
                expires_at=record.expires_at,
            )
        case "cancelled":
            return CancelledExecution(
                **base,
                error=error(),
                run_output=run_output(),
                children_tasks=record.children_tasks,
                children_tasks_errors=record.children_tasks_errors or (),
                finalize_task=record.finalize_task,
                finalize_task_error=record.finalize_task_error,
                started_at=record.started_at,
                finished_at=finished_at(),
                expires_at=record.expires_at,
            )
    raise DurableExecutionError(
        f"Execution {record.execution_id} has an unknown status {record.status!r}",
        is_retryable=False,
    )
