"""SQLite rows <-> the neutral columns of :mod:`.conversion`: JSON as text, timestamps as epoch
milliseconds, booleans as 0/1 (the generated code turns those back into bool)."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import TypedDict

from durable_execution.clock import from_epoch_ms, to_epoch_ms
from durable_execution.generated import sqlite as lite
from durable_execution.generated.sqlite.models import DurableTaskExecution as SqliteRow
from durable_execution.storage import conversion
from durable_execution.storage.conversion import Columns, JsonValue
from durable_execution.storage.errors import MalformedRowError
from durable_execution.storage.types import TaskExecutionRecord


def json_text(value: JsonValue) -> str | None:
    return None if value is None else conversion.dump_json_text(value)


def ms(moment: datetime | None) -> int | None:
    return None if moment is None else to_epoch_ms(moment)


def bound_ms(moment: datetime, name: str) -> int:
    """An exclusive upper bound in epoch ms: ``stored < bound`` means the same as in Python.

    Stored values are whole milliseconds, so ``x < 10.5 ms`` holds exactly when ``x < 11``:
    a bound with a sub-millisecond part rounds *up*.
    """
    if moment.tzinfo is None:
        raise ValueError(f"{name} is a naive datetime ({moment!r}); timestamps must be aware")
    floor = to_epoch_ms(moment)
    return floor + 1 if moment.microsecond % 1000 else floor


def columns(row: SqliteRow) -> Columns:
    """A row's values in the neutral form (JSON decoded, timestamps as aware datetimes)."""

    def json_column(column: str, text: str | None) -> JsonValue:
        return conversion.load_json_text(text, execution_id=row.execution_id, column=column)

    def moment(column: str, epoch_ms: int) -> datetime:
        try:
            return from_epoch_ms(epoch_ms)
        except (OverflowError, ValueError):  # beyond datetime's years 1-9999
            raise MalformedRowError(
                row.execution_id, column, f"{epoch_ms} epoch ms is out of range"
            ) from None

    def optional_moment(column: str, epoch_ms: int | None) -> datetime | None:
        return None if epoch_ms is None else moment(column, epoch_ms)

    return Columns(
        root_task_id=row.root_task_id,
        root_execution_id=row.root_execution_id,
        parent_task_id=row.parent_task_id,
        parent_execution_id=row.parent_execution_id,
        is_finalize_task=row.is_finalize_task,
        task_id=row.task_id,
        execution_id=row.execution_id,
        retry_options=json_column("retry_options", row.retry_options),
        sleep_ms_before_run=row.sleep_ms_before_run,
        timeout_ms=row.timeout_ms,
        run_input=row.run_input,
        run_output=row.run_output,
        output=row.output,
        children_tasks_completed_count=row.children_tasks_completed_count,
        children_tasks=json_column("children_tasks", row.children_tasks),
        children_tasks_errors=json_column("children_tasks_errors", row.children_tasks_errors),
        finalize_task=json_column("finalize_task", row.finalize_task),
        finalize_task_error=json_column("finalize_task_error", row.finalize_task_error),
        error=json_column("error", row.error),
        status=row.status,
        is_closed=row.is_closed,
        needs_promise_cancellation=row.needs_promise_cancellation,
        retry_attempts=row.retry_attempts,
        lease_expiries=row.lease_expiries,
        start_at=moment("start_at", row.start_at),
        started_at=optional_moment("started_at", row.started_at),
        finished_at=optional_moment("finished_at", row.finished_at),
        expires_at=optional_moment("expires_at", row.expires_at),
        version=row.version,
        created_at=moment("created_at", row.created_at),
        updated_at=moment("updated_at", row.updated_at),
        rerun_of_execution_id=row.rerun_of_execution_id,
        trace_context=row.trace_context,
        queue=row.queue,
        concurrency_key=row.concurrency_key,
        concurrency_limit=row.concurrency_limit,
        idempotency_key=row.idempotency_key,
        priority=row.priority,
    )


def record(row: SqliteRow) -> TaskExecutionRecord:
    return conversion.record_from_columns(columns(row))


def claim_order(row: SqliteRow) -> tuple[int, int, int]:
    """The claim's order: highest priority first, then FIFO (as ClaimReadyTaskExecutions)."""
    return (-row.priority, row.start_at, row.id)


class SqliteChanges(TypedDict):
    """The value parameters of the SQLite update queries: JSON as text, epoch milliseconds."""

    new_run_output: str | None
    new_output: str | None
    new_children_tasks_completed_count: int | None
    new_children_tasks: str | None
    new_children_tasks_errors: str | None
    new_finalize_task: str | None
    new_finalize_task_error: str | None
    unset_error: bool
    new_error: str | None
    new_status: str | None
    new_is_closed: bool | None
    new_needs_promise_cancellation: bool | None
    new_retry_attempts: int | None
    new_lease_expiries: int | None
    new_start_at: int | None
    new_started_at: int | None
    new_finished_at: int | None
    unset_expires_at: bool
    new_expires_at: int | None
    new_version: int | None
    new_updated_at: int


def sqlite_changes(c: conversion.ColumnChanges) -> SqliteChanges:
    return SqliteChanges(
        new_run_output=c["new_run_output"],
        new_output=c["new_output"],
        new_children_tasks_completed_count=c["new_children_tasks_completed_count"],
        new_children_tasks=json_text(c["new_children_tasks"]),
        new_children_tasks_errors=json_text(c["new_children_tasks_errors"]),
        new_finalize_task=json_text(c["new_finalize_task"]),
        new_finalize_task_error=json_text(c["new_finalize_task_error"]),
        unset_error=c["unset_error"],
        new_error=json_text(c["new_error"]),
        new_status=c["new_status"],
        new_is_closed=c["new_is_closed"],
        new_needs_promise_cancellation=c["new_needs_promise_cancellation"],
        new_retry_attempts=c["new_retry_attempts"],
        new_lease_expiries=c["new_lease_expiries"],
        new_start_at=ms(c["new_start_at"]),
        new_started_at=ms(c["new_started_at"]),
        new_finished_at=ms(c["new_finished_at"]),
        unset_expires_at=c["unset_expires_at"],
        new_expires_at=ms(c["new_expires_at"]),
        new_version=c["new_version"],
        new_updated_at=to_epoch_ms(c["new_updated_at"]),
    )


def insert_row(queries: lite.Queries, conn: sqlite3.Connection, c: Columns) -> bool:
    """Insert one execution's row (the caller has checked for duplicates); ``False`` if it was
    skipped because its idempotency key is taken."""
    return (
        queries.insert_task_execution(
            conn,
            root_task_id=c.root_task_id,
            root_execution_id=c.root_execution_id,
            parent_task_id=c.parent_task_id,
            parent_execution_id=c.parent_execution_id,
            is_finalize_task=c.is_finalize_task,
            task_id=c.task_id,
            execution_id=c.execution_id,
            retry_options=conversion.dump_json_text(c.retry_options),
            sleep_ms_before_run=c.sleep_ms_before_run,
            timeout_ms=c.timeout_ms,
            run_input=c.run_input,
            run_output=c.run_output,
            output=c.output,
            children_tasks_completed_count=c.children_tasks_completed_count,
            children_tasks=json_text(c.children_tasks),
            children_tasks_errors=json_text(c.children_tasks_errors),
            finalize_task=json_text(c.finalize_task),
            finalize_task_error=json_text(c.finalize_task_error),
            error=json_text(c.error),
            status=c.status,
            is_closed=c.is_closed,
            needs_promise_cancellation=c.needs_promise_cancellation,
            retry_attempts=c.retry_attempts,
            lease_expiries=c.lease_expiries,
            start_at=to_epoch_ms(c.start_at),
            started_at=ms(c.started_at),
            finished_at=ms(c.finished_at),
            expires_at=ms(c.expires_at),
            version=c.version,
            created_at=to_epoch_ms(c.created_at),
            updated_at=to_epoch_ms(c.updated_at),
            rerun_of_execution_id=c.rerun_of_execution_id,
            trace_context=c.trace_context,
            queue=c.queue,
            concurrency_key=c.concurrency_key,
            concurrency_limit=c.concurrency_limit,
            idempotency_key=c.idempotency_key,
            priority=c.priority,
        )
        == 1
    )
