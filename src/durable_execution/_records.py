"""Building stored records and the errors one execution reports to another."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from durable_execution import clock
from durable_execution._options import ExecutionOptions
from durable_execution._registry import storable_input
from durable_execution._telemetry import current_trace_context
from durable_execution.errors import DurableExecutionCancelledError, DurableExecutionError
from durable_execution.ids import generate_execution_id
from durable_execution.model import ExecutionErrorInfo, ParentTaskRef, TaskRef
from durable_execution.serializer import CheckedSerializer
from durable_execution.storage.types import TaskExecutionRecord
from durable_execution.tasks import TaskDefinition

TASK_EXPIRED_ERROR = DurableExecutionError("Task expired", is_retryable=False).to_info()


def lease_expiries_exceeded_error(lease_expiries: int) -> ExecutionErrorInfo:
    """The final error of an execution whose lease expired ``max_lease_expiries`` times."""
    return DurableExecutionError(
        f"Task lease expired {lease_expiries} times (max_lease_expiries reached): each time its"
        " executor stopped renewing the lease without storing a result, so its process probably"
        " crashed; it is not run again",
        is_retryable=False,
    ).to_info()


def new_record(
    *,
    task_id: str,
    execution_id: str,
    options: ExecutionOptions,
    run_input: str,
    now: datetime,
    root_task: TaskRef | None = None,
    parent_task: ParentTaskRef | None = None,
    trace_context: str | None = None,
) -> TaskExecutionRecord:
    """The record of a fresh, ready execution (top-level, child or finalize).

    ``trace_context``: the W3C context its attempts continue (see ``_telemetry``)."""
    return TaskExecutionRecord(
        task_id=task_id,
        execution_id=execution_id,
        retry_options=options.retry_options,
        sleep_ms_before_run=options.sleep_ms_before_run,
        timeout_ms=options.timeout_ms,
        run_input=run_input,
        status="ready",
        start_at=now + timedelta(milliseconds=options.sleep_ms_before_run),
        created_at=now,
        updated_at=now,
        root_task=root_task,
        parent_task=parent_task,
        trace_context=trace_context,
        idempotency_key=options.idempotency_key,
        priority=options.priority,
    )


def enqueued_record(
    definition: TaskDefinition,
    options: ExecutionOptions,
    validated_input: object,
    serializer: CheckedSerializer,
) -> TaskExecutionRecord:
    """The record of a top-level execution a user enqueues (``DurableExecutor.enqueue_task`` or
    a ``SyncClient``): its input, already validated, serialized within the size limit; a new
    id; the current trace context."""
    run_input = serializer.serialize_limited(
        storable_input(definition, validated_input), f"the input of task {definition.id}"
    )
    return new_record(
        task_id=definition.id,
        execution_id=generate_execution_id(),
        options=options,
        run_input=run_input,
        now=clock.now(),
        trace_context=current_trace_context(),
    )


def descendant_links(
    parent: TaskExecutionRecord, *, finalize: bool
) -> tuple[TaskRef, ParentTaskRef]:
    """Root and parent references for a child (or the finalize execution) of ``parent``."""
    root = parent.root_task or TaskRef(task_id=parent.task_id, execution_id=parent.execution_id)
    return root, ParentTaskRef(
        task_id=parent.task_id, execution_id=parent.execution_id, is_finalize_task=finalize
    )


def parent_error(record: TaskExecutionRecord) -> ExecutionErrorInfo:
    """What a finished, unsuccessful execution reports to its parent.

    Without the traceback: the child's own row keeps it, and a parent of thousands of failed
    children would otherwise carry thousands of them."""
    if record.error is not None:
        return replace(record.error, traceback=None)
    if record.finalize_task_error is not None:
        finalize_id = record.finalize_task.task_id if record.finalize_task else "unknown"
        message = (
            f"Finalize task with id {finalize_id} failed: {record.finalize_task_error.message}"
        )
    elif record.children_tasks_errors:
        message = "Children task errors:" + "".join(
            f"\n  Child task with id {child.task_id} failed: {child.error.message}"
            for child in record.children_tasks_errors
        )
    else:
        message = "Unknown error"
    return ExecutionErrorInfo(error_type="generic", message=message, is_retryable=False)


def parent_failed_error(parent: TaskExecutionRecord) -> ExecutionErrorInfo:
    """The error of a child cancelled because its parent finished without completing."""
    return DurableExecutionCancelledError(
        f"Parent task {parent.task_id} with execution id {parent.execution_id} failed:"
        f" {parent_error(parent).message}"
    ).to_info()
