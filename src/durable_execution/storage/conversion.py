"""Records <-> table columns, shared by the SQLite and PostgreSQL storages.

The two dialects store the same columns in different physical forms (SQLite: JSON as text,
timestamps as epoch milliseconds; PostgreSQL: ``jsonb`` and ``timestamptz``). Everything that does
not depend on that form lives here, so both backends agree on it by construction:

* the *neutral* column form: JSON columns hold decoded JSON values, timestamps are aware UTC
  datetimes truncated to the millisecond (what every backend can store exactly);
* an absent optional field is SQL ``NULL`` and nothing else (never JSON ``null``, never ``[]``);
* the JSON shape of the nested values (retry options, task refs, errors, child errors);
* reading is strict: a row that does not decode raises :class:`MalformedRowError` naming the
  execution and the column, instead of a ``KeyError`` somewhere in the executor.

PostgreSQL rows already are in the neutral form (psycopg decodes ``jsonb`` and ``timestamptz``),
so they satisfy :class:`RowColumns` as they are; the SQLite storage decodes its text and integers
into :class:`Columns` first.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Protocol, TypeAlias, TypedDict, TypeGuard

from durable_execution.clock import truncate_to_ms
from durable_execution.model import (
    ALL_STATUSES,
    ChildTaskError,
    ExecutionErrorInfo,
    ParentTaskRef,
    RetryOptions,
    TaskExecutionStatus,
    TaskRef,
)
from durable_execution.storage.error_json import error_from_json, error_json
from durable_execution.storage.errors import MalformedRowError, StorageError
from durable_execution.storage.types import (
    HeldLease,
    TaskExecutionRecord,
    TaskExecutionUpdate,
    WhereByExecutionIds,
)

# A JSON document as ``json.loads`` (and psycopg's jsonb loader) returns it. Structurally the same
# alias as the generated PostgreSQL code's, so values flow between them without casts.
JsonValue: TypeAlias = dict[str, "JsonValue"] | list["JsonValue"] | str | int | float | bool | None

_STATUSES: Final = frozenset(ALL_STATUSES)

# The largest row limit the SQL queries can bind (PostgreSQL casts it to `integer`; SQLite's
# parameters stop at 2**63 - 1). No query returns that many rows, so anything above is "all".
MAX_ROW_LIMIT: Final = 2**31 - 1


def check_limit(limit: int) -> None:
    if limit < 0:
        raise StorageError(f"limit must be >= 0, got {limit}")


def positive_limit(limit: int) -> int:
    """A read's ``limit`` (>= 1, else refused) as the SQL queries bind it (at most
    :data:`MAX_ROW_LIMIT`)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise StorageError(f"limit must be an int >= 1, got {limit!r}")
    return min(limit, MAX_ROW_LIMIT)


def matches_nothing(where: WhereByExecutionIds) -> bool:
    """A guarded update that cannot match a row, answered without a round trip."""
    return not where.execution_ids or (where.statuses is not None and not where.statuses)


def renewal_expires_at(leases: Sequence[HeldLease], expires_at: datetime) -> datetime:
    """``expires_at`` as stored (UTC, whole ms), once the arguments of
    ``renew_task_execution_leases`` are known to be sound (before any statement runs)."""
    ids = [lease.execution_id for lease in leases]
    if len(set(ids)) != len(ids):
        raise StorageError("renew_task_execution_leases: an execution id is given twice")
    return utc_ms(expires_at, "expires_at")


# --- timestamps -----------------------------------------------------------------------------


def utc_ms(moment: datetime, name: str) -> datetime:
    """``moment`` in UTC, truncated to the millisecond: the one form every backend stores exactly.
    A naive datetime is refused: PostgreSQL would read it in the session's time zone and SQLite
    would have to guess, so the same record would mean different instants on each backend."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} is a naive datetime ({moment!r}); timestamps must be aware")
    return truncate_to_ms(moment.astimezone(UTC))


def _utc_ms_or_none(moment: datetime | None, name: str) -> datetime | None:
    return None if moment is None else utc_ms(moment, name)


# --- the neutral column form ----------------------------------------------------------------


class RowColumns(Protocol):
    """The columns of one stored execution in the neutral form (read-only).

    The generated PostgreSQL row type satisfies it as it is; :class:`Columns` is the concrete form
    the SQLite storage decodes into and both storages encode from.
    """

    @property
    def root_task_id(self) -> str | None: ...
    @property
    def root_execution_id(self) -> str | None: ...
    @property
    def parent_task_id(self) -> str | None: ...
    @property
    def parent_execution_id(self) -> str | None: ...
    @property
    def is_finalize_task(self) -> bool | None: ...
    @property
    def task_id(self) -> str: ...
    @property
    def execution_id(self) -> str: ...
    @property
    def retry_options(self) -> JsonValue: ...
    @property
    def sleep_ms_before_run(self) -> int: ...
    @property
    def timeout_ms(self) -> int: ...
    @property
    def run_input(self) -> str: ...
    @property
    def run_output(self) -> str | None: ...
    @property
    def output(self) -> str | None: ...
    @property
    def children_tasks_completed_count(self) -> int: ...
    @property
    def children_tasks(self) -> JsonValue: ...
    @property
    def children_tasks_errors(self) -> JsonValue: ...
    @property
    def finalize_task(self) -> JsonValue: ...
    @property
    def finalize_task_error(self) -> JsonValue: ...
    @property
    def error(self) -> JsonValue: ...
    @property
    def status(self) -> str: ...
    @property
    def is_closed(self) -> bool: ...
    @property
    def needs_promise_cancellation(self) -> bool: ...
    @property
    def retry_attempts(self) -> int: ...
    @property
    def lease_expiries(self) -> int: ...
    @property
    def start_at(self) -> datetime: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def finished_at(self) -> datetime | None: ...
    @property
    def expires_at(self) -> datetime | None: ...
    @property
    def version(self) -> int: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def rerun_of_execution_id(self) -> str | None: ...
    @property
    def trace_context(self) -> str | None: ...
    @property
    def queue(self) -> str: ...
    @property
    def concurrency_key(self) -> str | None: ...
    @property
    def concurrency_limit(self) -> int | None: ...
    @property
    def idempotency_key(self) -> str | None: ...
    @property
    def priority(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Columns:
    """One execution as column values in the neutral form (``None`` is SQL ``NULL``)."""

    root_task_id: str | None
    root_execution_id: str | None
    parent_task_id: str | None
    parent_execution_id: str | None
    is_finalize_task: bool | None
    task_id: str
    execution_id: str
    retry_options: JsonValue
    sleep_ms_before_run: int
    timeout_ms: int
    run_input: str
    run_output: str | None
    output: str | None
    children_tasks_completed_count: int
    children_tasks: JsonValue
    children_tasks_errors: JsonValue
    finalize_task: JsonValue
    finalize_task_error: JsonValue
    error: JsonValue
    status: str
    is_closed: bool
    needs_promise_cancellation: bool
    retry_attempts: int
    lease_expiries: int
    start_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime
    rerun_of_execution_id: str | None
    trace_context: str | None
    queue: str
    concurrency_key: str | None
    concurrency_limit: int | None
    idempotency_key: str | None
    priority: int


# --- encoding: records and updates to columns -------------------------------------------------


def retry_options_json(options: RetryOptions) -> JsonValue:
    encoded: dict[str, JsonValue] = {
        "max_attempts": options.max_attempts,
        "base_delay_ms": options.base_delay_ms,
        "delay_multiplier": options.delay_multiplier,
    }
    if options.max_delay_ms is not None:  # absent stays absent
        encoded["max_delay_ms"] = options.max_delay_ms
    return encoded


def task_ref_json(ref: TaskRef) -> JsonValue:
    return {"task_id": ref.task_id, "execution_id": ref.execution_id}


def child_error_json(child: ChildTaskError) -> JsonValue:
    return {
        "index": child.index,
        "task_id": child.task_id,
        "execution_id": child.execution_id,
        "error": error_json(child.error),
    }


def _refs_json(refs: tuple[TaskRef, ...] | None) -> JsonValue:
    return None if refs is None else [task_ref_json(ref) for ref in refs]


def _child_errors_json(errors: tuple[ChildTaskError, ...] | None) -> JsonValue:
    return None if errors is None else [child_error_json(child) for child in errors]


def _ref_json_or_none(ref: TaskRef | None) -> JsonValue:
    return None if ref is None else task_ref_json(ref)


def _error_json_or_none(error: ExecutionErrorInfo | None) -> JsonValue:
    return None if error is None else error_json(error)


def columns_from_record(record: TaskExecutionRecord) -> Columns:
    """The columns that store ``record``."""
    root, parent = record.root_task, record.parent_task
    return Columns(
        root_task_id=None if root is None else root.task_id,
        root_execution_id=None if root is None else root.execution_id,
        parent_task_id=None if parent is None else parent.task_id,
        parent_execution_id=None if parent is None else parent.execution_id,
        is_finalize_task=None if parent is None else parent.is_finalize_task,
        task_id=record.task_id,
        execution_id=record.execution_id,
        retry_options=retry_options_json(record.retry_options),
        sleep_ms_before_run=record.sleep_ms_before_run,
        timeout_ms=record.timeout_ms,
        run_input=record.run_input,
        run_output=record.run_output,
        output=record.output,
        children_tasks_completed_count=record.children_tasks_completed_count,
        children_tasks=_refs_json(record.children_tasks),
        children_tasks_errors=_child_errors_json(record.children_tasks_errors),
        finalize_task=_ref_json_or_none(record.finalize_task),
        finalize_task_error=_error_json_or_none(record.finalize_task_error),
        error=_error_json_or_none(record.error),
        status=record.status,
        is_closed=record.is_closed,
        needs_promise_cancellation=record.needs_promise_cancellation,
        retry_attempts=record.retry_attempts,
        lease_expiries=record.lease_expiries,
        start_at=utc_ms(record.start_at, "start_at"),
        started_at=_utc_ms_or_none(record.started_at, "started_at"),
        finished_at=_utc_ms_or_none(record.finished_at, "finished_at"),
        expires_at=_utc_ms_or_none(record.expires_at, "expires_at"),
        version=record.version,
        created_at=utc_ms(record.created_at, "created_at"),
        updated_at=utc_ms(record.updated_at, "updated_at"),
        rerun_of_execution_id=record.rerun_of,
        trace_context=record.trace_context,
        queue=record.queue,
        concurrency_key=record.concurrency_key,
        concurrency_limit=record.concurrency_limit,
        idempotency_key=record.idempotency_key,
        priority=record.priority,
    )


class ColumnChanges(TypedDict):
    """A partial update as the value parameters of the generated update queries.

    The keys are exactly the ``new_*`` / ``unset_*`` parameter names of those queries, in the
    neutral form: the PostgreSQL storage passes them as they are (``**changes``), the SQLite
    storage encodes JSON and timestamps first. ``None`` means "leave the column unchanged".
    """

    new_run_output: str | None
    new_output: str | None
    new_children_tasks_completed_count: int | None
    new_children_tasks: JsonValue | None
    new_children_tasks_errors: JsonValue | None
    new_finalize_task: JsonValue | None
    new_finalize_task_error: JsonValue | None
    unset_error: bool
    new_error: JsonValue | None
    new_status: str | None
    new_is_closed: bool | None
    new_needs_promise_cancellation: bool | None
    new_retry_attempts: int | None
    new_lease_expiries: int | None
    new_start_at: datetime | None
    new_started_at: datetime | None
    new_finished_at: datetime | None
    unset_expires_at: bool
    new_expires_at: datetime | None
    new_version: int | None
    new_updated_at: datetime


def changes_from_update(update: TaskExecutionUpdate) -> ColumnChanges:
    """The update query parameters that apply ``update``."""
    u = update
    return ColumnChanges(
        new_run_output=u.run_output,
        new_output=u.output,
        new_children_tasks_completed_count=u.children_tasks_completed_count,
        new_children_tasks=_refs_json(u.children_tasks),
        new_children_tasks_errors=_child_errors_json(u.children_tasks_errors),
        new_finalize_task=_ref_json_or_none(u.finalize_task),
        new_finalize_task_error=_error_json_or_none(u.finalize_task_error),
        unset_error=u.unset_error,
        new_error=_error_json_or_none(u.error),
        new_status=u.status,
        new_is_closed=u.is_closed,
        new_needs_promise_cancellation=u.needs_promise_cancellation,
        new_retry_attempts=u.retry_attempts,
        new_lease_expiries=u.lease_expiries,
        new_start_at=_utc_ms_or_none(u.start_at, "start_at"),
        new_started_at=_utc_ms_or_none(u.started_at, "started_at"),
        new_finished_at=_utc_ms_or_none(u.finished_at, "finished_at"),
        unset_expires_at=u.unset_expires_at,
        new_expires_at=_utc_ms_or_none(u.expires_at, "expires_at"),
        new_version=u.version,
        new_updated_at=utc_ms(u.updated_at, "updated_at"),
    )


def pending_updates(
    updates: Sequence[tuple[WhereByExecutionIds, TaskExecutionUpdate]],
) -> list[tuple[int, WhereByExecutionIds, ColumnChanges]]:
    """The items of an ``update_task_executions_each`` that may match a row, with their position
    and parameters (the others match nothing: no statement is sent for them, and their update is
    not checked). Every parameter is built before any statement runs, so a bad update raises
    before anything is written."""
    return [
        (index, where, changes_from_update(update))
        for index, (where, update) in enumerate(updates)
        if not matches_nothing(where)
    ]


def dump_json_text(value: JsonValue) -> str:
    """JSON text for a TEXT column: compact, non-ASCII kept as is, NaN/Infinity refused."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


# --- decoding: columns to records -------------------------------------------------------------


def _is_int(value: object) -> TypeGuard[int]:
    # bool is an int subclass, but a stored `true` where a count belongs is corruption.
    return isinstance(value, int) and not isinstance(value, bool)


class _Decoder:
    """Decodes the columns of one row; every failure names that row's execution and column."""

    def __init__(self, execution_id: str) -> None:
        self.execution_id = execution_id

    def fail(self, column: str, problem: str) -> MalformedRowError:
        return MalformedRowError(self.execution_id, column, problem)

    def json_object(self, value: JsonValue, column: str) -> dict[str, JsonValue]:
        if not isinstance(value, dict):
            raise self.fail(column, f"expected a JSON object, got {_describe(value)}")
        return value

    def json_array(self, value: JsonValue, column: str) -> list[JsonValue]:
        if not isinstance(value, list):
            raise self.fail(column, f"expected a JSON array, got {_describe(value)}")
        return value

    def str_field(self, obj: dict[str, JsonValue], key: str, column: str) -> str:
        value = obj.get(key)
        if not isinstance(value, str):
            raise self.fail(column, f"{key!r} must be a string, got {_describe(value)}")
        return value

    def int_field(
        self, obj: dict[str, JsonValue], key: str, column: str, default: int | None = None
    ) -> int:
        value = obj.get(key, default)
        if not _is_int(value):
            raise self.fail(column, f"{key!r} must be an integer, got {_describe(value)}")
        return value

    def bool_field(
        self, obj: dict[str, JsonValue], key: str, column: str, default: bool | None = None
    ) -> bool:
        value = obj.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(column, f"{key!r} must be a boolean, got {_describe(value)}")
        return value

    def retry_options(self, value: JsonValue, column: str = "retry_options") -> RetryOptions:
        obj = self.json_object(value, column)
        multiplier = obj.get("delay_multiplier", 1.0)
        if not isinstance(multiplier, int | float) or isinstance(multiplier, bool):
            raise self.fail(column, f"'delay_multiplier' must be a number, got {multiplier!r}")
        if not math.isfinite(multiplier):
            raise self.fail(column, f"'delay_multiplier' must be finite, got {multiplier!r}")
        max_delay = obj.get("max_delay_ms")
        if max_delay is not None and not _is_int(max_delay):
            raise self.fail(column, f"'max_delay_ms' must be an integer, got {max_delay!r}")
        return RetryOptions(
            max_attempts=self.int_field(obj, "max_attempts", column),
            base_delay_ms=self.int_field(obj, "base_delay_ms", column, default=0),
            delay_multiplier=float(multiplier),
            max_delay_ms=max_delay,
        )

    def task_ref(self, value: JsonValue, column: str) -> TaskRef:
        obj = self.json_object(value, column)
        return TaskRef(
            task_id=self.str_field(obj, "task_id", column),
            execution_id=self.str_field(obj, "execution_id", column),
        )

    def error(self, value: JsonValue, column: str) -> ExecutionErrorInfo:
        return error_from_json(value, lambda problem: self.fail(column, problem))

    def child_error(self, value: JsonValue, column: str) -> ChildTaskError:
        obj = self.json_object(value, column)
        return ChildTaskError(
            index=self.int_field(obj, "index", column),
            task_id=self.str_field(obj, "task_id", column),
            execution_id=self.str_field(obj, "execution_id", column),
            error=self.error(obj.get("error"), column),
        )

    def optional_task_ref(self, value: JsonValue, column: str) -> TaskRef | None:
        return None if value is None else self.task_ref(value, column)

    def optional_error(self, value: JsonValue, column: str) -> ExecutionErrorInfo | None:
        return None if value is None else self.error(value, column)

    def children_tasks(self, value: JsonValue) -> tuple[TaskRef, ...] | None:
        column = "children_tasks"
        if value is None:
            return None
        return tuple(self.task_ref(item, column) for item in self.json_array(value, column))

    def children_tasks_errors(self, value: JsonValue) -> tuple[ChildTaskError, ...] | None:
        column = "children_tasks_errors"
        if value is None:
            return None
        return tuple(self.child_error(item, column) for item in self.json_array(value, column))

    def status(self, value: str) -> TaskExecutionStatus:
        if not _is_status(value):
            raise self.fail("status", f"unknown status {value!r}")
        return value

    def timestamp(self, value: datetime, column: str) -> datetime:
        if not isinstance(value, datetime):  # PostgreSQL: see _pg_timestamps
            raise self.fail(column, f"timestamp {value!s} is out of range (years 1-9999)")
        if value.tzinfo is None:
            raise self.fail(column, "timestamp without a time zone")
        return value.astimezone(UTC)

    def optional_timestamp(self, value: datetime | None, column: str) -> datetime | None:
        return None if value is None else self.timestamp(value, column)

    def root_task(self, row: RowColumns) -> TaskRef | None:
        task_id, execution_id = row.root_task_id, row.root_execution_id
        if task_id is None and execution_id is None:
            return None
        if task_id is None or execution_id is None:
            raise self.fail("root_task_id/root_execution_id", "only one of the two is set")
        return TaskRef(task_id=task_id, execution_id=execution_id)

    def parent_task(self, row: RowColumns) -> ParentTaskRef | None:
        task_id, execution_id = row.parent_task_id, row.parent_execution_id
        if task_id is None and execution_id is None:
            return None
        if task_id is None or execution_id is None:
            raise self.fail("parent_task_id/parent_execution_id", "only one of the two is set")
        return ParentTaskRef(
            task_id=task_id,
            execution_id=execution_id,
            is_finalize_task=bool(row.is_finalize_task),
        )


def _is_status(value: object) -> TypeGuard[TaskExecutionStatus]:
    return value in _STATUSES


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def record_from_columns(row: RowColumns) -> TaskExecutionRecord:
    """The record a row stores; raises :class:`MalformedRowError` if the row does not decode."""
    d = _Decoder(row.execution_id)
    return TaskExecutionRecord(
        task_id=row.task_id,
        execution_id=row.execution_id,
        retry_options=d.retry_options(row.retry_options),
        sleep_ms_before_run=row.sleep_ms_before_run,
        timeout_ms=row.timeout_ms,
        run_input=row.run_input,
        status=d.status(row.status),
        start_at=d.timestamp(row.start_at, "start_at"),
        created_at=d.timestamp(row.created_at, "created_at"),
        updated_at=d.timestamp(row.updated_at, "updated_at"),
        root_task=d.root_task(row),
        parent_task=d.parent_task(row),
        run_output=row.run_output,
        output=row.output,
        children_tasks_completed_count=row.children_tasks_completed_count,
        children_tasks=d.children_tasks(row.children_tasks),
        children_tasks_errors=d.children_tasks_errors(row.children_tasks_errors),
        finalize_task=d.optional_task_ref(row.finalize_task, "finalize_task"),
        finalize_task_error=d.optional_error(row.finalize_task_error, "finalize_task_error"),
        error=d.optional_error(row.error, "error"),
        is_closed=row.is_closed,
        needs_promise_cancellation=row.needs_promise_cancellation,
        retry_attempts=row.retry_attempts,
        lease_expiries=row.lease_expiries,
        started_at=d.optional_timestamp(row.started_at, "started_at"),
        finished_at=d.optional_timestamp(row.finished_at, "finished_at"),
        expires_at=d.optional_timestamp(row.expires_at, "expires_at"),
        version=row.version,
        rerun_of=row.rerun_of_execution_id,
        trace_context=row.trace_context,
        queue=row.queue,
        concurrency_key=row.concurrency_key,
        concurrency_limit=row.concurrency_limit,
        idempotency_key=row.idempotency_key,
        priority=row.priority,
    )


def load_json_text(text: str | None, *, execution_id: str, column: str) -> JsonValue:
    """Decode a TEXT column holding JSON (``None`` stays ``None``: the column is NULL)."""
    if text is None:
        return None
    try:
        value: JsonValue = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise MalformedRowError(execution_id, column, f"invalid JSON ({error})") from None
    return value
