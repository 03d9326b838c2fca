"""What the generated-query tests share: an execution spec, its encodings, and a migrator.

An :class:`Execution` describes one row in plain Python terms (aware datetimes, JSON values).
Each dialect's tests encode it into the generated insert parameters and decode rows back into
it, so one ``==`` checks that every column round-trips. This is deliberately a small, local
conversion: the storage's own record<->row layer is tested elsewhere.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypedDict, TypeVar, cast

import psycopg

from durable_execution.clock import from_epoch_ms, to_epoch_ms
from durable_execution.generated import postgresql as pg
from durable_execution.generated import sqlite as lite
from durable_execution.generated.postgresql.models import DurableTaskExecution as PgRow
from durable_execution.generated.postgresql.models import JsonValue
from durable_execution.generated.sqlite.models import DurableTaskExecution as SqliteRow

# A fixed instant with a millisecond part, so that a lost millisecond shows up.
T0 = datetime(2025, 3, 4, 5, 6, 7, 891_000, tzinfo=UTC)


def at(ms: int) -> datetime:
    """``T0`` shifted by ``ms`` milliseconds."""
    return T0 + timedelta(milliseconds=ms)


def _retry_options() -> JsonValue:
    return {"max_attempts": 0, "base_delay_ms": 0, "delay_multiplier": 1.0}


@dataclass(frozen=True, slots=True)
class Execution:
    """One row of the executions table, every column but the surrogate id."""

    execution_id: str
    task_id: str = "task"
    root_task_id: str | None = None
    root_execution_id: str | None = None
    parent_task_id: str | None = None
    parent_execution_id: str | None = None
    is_finalize_task: bool | None = None
    retry_options: JsonValue = field(default_factory=_retry_options)
    sleep_ms_before_run: int = 0
    timeout_ms: int = 1_000
    run_input: str = '"input"'
    run_output: str | None = None
    output: str | None = None
    children_tasks_completed_count: int = 0
    children_tasks: JsonValue = None
    children_tasks_errors: JsonValue = None
    finalize_task: JsonValue = None
    finalize_task_error: JsonValue = None
    error: JsonValue = None
    status: str = "ready"
    is_closed: bool = False
    needs_promise_cancellation: bool = False
    retry_attempts: int = 0
    lease_expiries: int = 0
    start_at: datetime = T0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    expires_at: datetime | None = None
    version: int = 0
    created_at: datetime = T0
    updated_at: datetime = T0
    rerun_of_execution_id: str | None = None
    trace_context: str | None = None
    queue: str = "default"
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    idempotency_key: str | None = None
    priority: int = 0


def fully_populated(execution_id: str) -> Execution:
    """An execution with every nullable column set, and JSON that exercises the encoders."""
    return Execution(
        execution_id=execution_id,
        task_id="child-task",
        root_task_id="root-task",
        root_execution_id="te_root",
        parent_task_id="parent-task",
        parent_execution_id="te_parent",
        is_finalize_task=True,
        retry_options={
            "max_attempts": 3,
            "base_delay_ms": 250,
            "delay_multiplier": 1.5,
            "max_delay_ms": None,
        },
        sleep_ms_before_run=12,
        timeout_ms=86_400_000 * 30,  # beyond 32-bit milliseconds: the column must be 64-bit
        run_input='{"text": "h\\u00e9llo"}',
        run_output='"run output"',
        output="ünïcödé output ✓",
        children_tasks_completed_count=2,
        children_tasks=[
            {"task_id": "a", "execution_id": "te_a"},
            {"task_id": "b", "execution_id": "te_b"},
        ],
        children_tasks_errors=[
            {
                "index": 1,
                "task_id": "b",
                "execution_id": "te_b",
                "error": {"error_type": "generic", "message": "bœm", "is_retryable": False},
            }
        ],
        finalize_task={"task_id": "fin", "execution_id": "te_fin"},
        finalize_task_error={"error_type": "timed_out", "message": "slow", "is_retryable": True},
        error={"error_type": "cancelled", "message": "", "nested": [1, 2.5, None, True]},
        status="running",
        is_closed=True,
        needs_promise_cancellation=True,
        retry_attempts=4,
        lease_expiries=2,
        start_at=at(1),
        started_at=at(2),
        finished_at=at(3),
        expires_at=at(4),
        version=7,
        created_at=at(-5),
        updated_at=at(6),
        rerun_of_execution_id="te_original",
        trace_context='{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}',
        queue="emails",
        concurrency_key="customer-7",
        concurrency_limit=2**31 - 1,
        idempotency_key=f"key-{execution_id}",
        priority=-7,
    )


@dataclass(frozen=True, slots=True)
class Change:
    """A partial update in plain Python terms: ``None`` leaves a column as it is."""

    updated_at: datetime
    run_output: str | None = None
    output: str | None = None
    children_tasks_completed_count: int | None = None
    children_tasks: JsonValue = None
    children_tasks_errors: JsonValue = None
    finalize_task: JsonValue = None
    finalize_task_error: JsonValue = None
    error: JsonValue = None
    unset_error: bool = False
    status: str | None = None
    is_closed: bool | None = None
    needs_promise_cancellation: bool | None = None
    retry_attempts: int | None = None
    lease_expiries: int | None = None
    start_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    expires_at: datetime | None = None
    unset_expires_at: bool = False
    version: int | None = None


def expected_after(execution: Execution, change: Change) -> Execution:
    """What ``execution`` must look like after ``change``: the contract, written in Python."""
    written: dict[str, Any] = {
        f.name: getattr(change, f.name)
        for f in fields(change)
        if f.name not in ("unset_error", "unset_expires_at") and getattr(change, f.name) is not None
    }
    if change.unset_error:
        written["error"] = None
    if change.unset_expires_at:
        written["expires_at"] = None
    return replace(execution, **written)


# --- data sets shared by both dialects' tests -------------------------------------------------

# Index name (with {t} for the table) -> (columns, unique), as the schema must create them.
INDEXES = {
    "ix_{t}_execution_id": (["execution_id"], True),
    "ix_{t}_status_is_closed_expires_at": (["status", "is_closed", "expires_at"], False),
    "ix_{t}_status_start_at_id": (["status", "start_at", "id"], False),
    "ix_{t}_parent_execution_id": (["parent_execution_id"], False),
    "ix_{t}_top_level_finished_at": (["finished_at", "id"], False),
    "ix_{t}_root_execution_id": (["root_execution_id"], False),
    "ix_{t}_ready_unlimited": (["status", "priority", "start_at", "id"], False),
    "ix_{t}_running_concurrency": (["status", "task_id", "concurrency_key"], False),
    "ix_{t}_task_id_idempotency_key": (["task_id", "idempotency_key"], True),
}
# Waiting executions under a concurrency limit: read per key on PostgreSQL (a lateral join per
# locked key), all at once on SQLite (numbered per key by a window function).
READY_CONCURRENCY_INDEX = {
    "postgresql": (
        ["task_id", "concurrency_key", "priority", "start_at", "id", "concurrency_limit", "queue"],
        False,
    ),
    "sqlite": (["status", "priority", "start_at", "id"], False),
}


def _in_tree(execution_id: str, root: str, **columns: object) -> Execution:
    return Execution(
        execution_id,
        root_task_id="task",
        root_execution_id=root,
        parent_task_id="task",
        parent_execution_id=root,
        is_finalize_task=False,
        **columns,  # type: ignore[arg-type]
    )


# For prune.sql, with PRUNE_BEFORE as the bound: te_1 and te_3 are whole, closed, finished old
# trees (in finished_at order); te_2's child still runs, te_4 is recent, te_5 is not closed.
PRUNED = [
    Execution("te_3", status="failed", is_closed=True, finished_at=at(30)),
    Execution("te_1", status="completed", is_closed=True, finished_at=at(10)),
    _in_tree("te_1c", "te_1", status="completed", is_closed=True, finished_at=at(500)),
    Execution("te_2", status="cancelled", is_closed=True, finished_at=at(20)),
    _in_tree("te_2c", "te_2", status="running"),
    Execution("te_4", status="completed", is_closed=True, finished_at=at(500)),
    Execution("te_5", status="completed", is_closed=False, finished_at=at(5)),
]
PRUNE_BEFORE = at(100)
PRUNED_TREES = ["te_1", "te_3"]
FINISHED = ["failed", "timed_out", "children_tasks_failed", "finalize_task_failed", "completed"]
FINISHED += ["cancelled"]

# Filtered by execution ids; ASKED lists them in another order, plus an id that does not exist.
BY_IDS = [
    Execution("te_1", status="ready", needs_promise_cancellation=False, version=0),
    Execution("te_2", status="running", needs_promise_cancellation=True, version=1),
    Execution("te_3", status="completed", needs_promise_cancellation=False, version=2),
    Execution("te_4", status="ready", needs_promise_cancellation=True, version=0),
    Execution("te_5", status="ready"),  # never asked for
]
ASKED = ["te_4", "te_3", "te_2", "te_1", "te_missing"]

# GetExpiredTaskExecutions at EXPIRY: running, unclosed rows whose lease ended strictly before,
# oldest updated_at first with ties by insertion: te_1, te_6, te_5. te_7's lease ends exactly at
# EXPIRY (not yet expired), te_2 has none, te_3 is closed, te_4 is not running.
EXPIRING = [
    Execution("te_1", status="running", expires_at=at(100), updated_at=at(30)),
    Execution("te_2", status="running", expires_at=None, updated_at=at(10)),
    Execution("te_3", status="running", is_closed=True, expires_at=at(50), updated_at=at(20)),
    Execution("te_4", status="completed", expires_at=at(50), updated_at=at(10)),
    Execution("te_5", status="running", expires_at=at(199), updated_at=at(40)),
    Execution("te_6", status="running", expires_at=at(150), updated_at=at(30)),
    Execution("te_7", status="running", expires_at=at(200), updated_at=at(0)),
]
EXPIRY = at(200)
EXPIRED = ["te_1", "te_6", "te_5"]

# GetFinishedUnclosedTaskExecutions: every finished status once, oldest updated_at first with
# ties by insertion: UNCLOSED. te_2 and te_8 are active, te_3 is closed.
FINISHING = [
    Execution("te_1", status="completed", updated_at=at(30)),
    Execution("te_2", status="running", updated_at=at(10)),
    Execution("te_3", status="failed", is_closed=True, updated_at=at(5)),
    Execution("te_4", status="cancelled", updated_at=at(10)),
    Execution("te_5", status="timed_out", updated_at=at(30)),
    Execution("te_6", status="children_tasks_failed", updated_at=at(20)),
    Execution("te_7", status="finalize_task_failed", updated_at=at(40)),
    Execution("te_8", status="waiting_for_children_tasks", updated_at=at(0)),
    Execution("te_9", status="failed", updated_at=at(50)),
]
UNCLOSED = ["te_4", "te_6", "te_1", "te_5", "te_7", "te_9"]
# GetFinishedTaskExecutionIds over all of FINISHING: closed or not, in insertion order.
FINISHED_IDS = ["te_1", "te_3", "te_4", "te_5", "te_6", "te_7", "te_9"]

# CancelActiveTaskExecutions asked for CANCEL_ASKED: te_1..te_4 are active (every active status),
# te_5 is finished, te_6 is not asked; te_2 runs in the caller's process (RUNNING_HERE).
ACTIVE = [
    Execution("te_1", status="ready", version=2),
    Execution("te_2", status="running", version=5, expires_at=at(10)),
    Execution("te_3", status="waiting_for_children_tasks"),
    Execution("te_4", status="waiting_for_finalize_task", needs_promise_cancellation=True),
    Execution("te_5", status="completed"),
    Execution("te_6", status="ready"),
]
CANCEL_ASKED = ["te_5", "te_4", "te_3", "te_2", "te_1", "te_missing"]
RUNNING_HERE = ["te_2", "te_5"]
CANCEL_ERROR: JsonValue = {"error_type": "cancelled", "message": "parent failed"}

# TakeCancellationRequests asked for REQUESTS_ASKED: te_1, te_3 and te_5 ask for their attempt to
# be stopped (by id order), te_2 does not, te_4 is not asked.
REQUESTS = [
    Execution("te_1", status="cancelled", needs_promise_cancellation=True, version=3),
    Execution("te_2", status="running"),
    Execution("te_3", status="cancelled", needs_promise_cancellation=True),
    Execution("te_4", status="cancelled", needs_promise_cancellation=True),
    Execution("te_5", status="cancelled", needs_promise_cancellation=True),
]
REQUESTS_ASKED = ["te_5", "te_3", "te_2", "te_1", "te_missing"]


def cancelled_by_parent(execution: Execution, *, running_here: bool) -> Execution:
    """What CancelActiveTaskExecutions at at(70) writes (no version bump)."""
    return replace(
        execution,
        status="cancelled",
        error=CANCEL_ERROR,
        needs_promise_cancellation=not running_here,
        finished_at=at(70),
        updated_at=at(70),
    )


def cancelled_by_user(execution: Execution, *, needs_promise_cancellation: bool) -> Execution:
    """What CancelTaskExecution at at(80) writes when its guard matches."""
    return replace(
        execution,
        status="cancelled",
        error=CANCEL_ERROR,
        needs_promise_cancellation=needs_promise_cancellation,
        finished_at=at(80),
        updated_at=at(80),
        version=execution.version + 1,
    )


def failed_unreadable(execution: Execution) -> Execution:
    """What FailUnreadableTaskExecution at at(90) writes to an active row (no version bump)."""
    return replace(
        execution,
        status="failed",
        error=UNREADABLE_ERROR,
        started_at=at(90),
        finished_at=at(90),
        updated_at=at(90),
        expires_at=None,
    )


UNREADABLE_ERROR: JsonValue = {"error_type": "generic", "message": "cannot decode the row"}
# FailUnreadableTaskExecution: every active status is failed, a finished row is left alone.
UNREADABLE = [
    Execution("te_1", status="ready"),
    Execution("te_2", status="running", error={"damaged": True}, expires_at=at(5), version=4),
    Execution("te_3", status="waiting_for_children_tasks", started_at=at(1)),
    Execution("te_4", status="waiting_for_finalize_task"),
    Execution("te_5", status="completed", finished_at=at(2)),
]

# Filtered by start_at; start order differs from insertion order, with one tie.
BY_START_AT = [
    Execution("te_1", start_at=at(5)),
    Execution("te_2", start_at=at(-1)),
    Execution("te_3", status="running", start_at=at(-2)),
    Execution("te_4", start_at=at(0)),
    Execution("te_5", start_at=at(-1)),
    Execution("te_6", start_at=at(-1000)),
]

# Ready rows claimed at at(0) (claim.sql): FIFO by start_at, ties by insertion, start_at == now
# included; te_1 is not due yet and te_3 is not ready. te_7 has its own timeout_ms (the lease
# does not depend on it).
CLAIMED = [*BY_START_AT, Execution("te_7", start_at=at(0), timeout_ms=250, version=3)]


# For the claim's queue filter and concurrency limits (at(0) is now): key a (limit 2) has three
# waiting, key b (limit 1) is full, te_mail is in another queue. Claimable, in FIFO order:
# te_free, te_a1, te_a2, te_mail.
LIMITED = [
    Execution("te_a3", start_at=at(-3), concurrency_key="a", concurrency_limit=2),
    Execution("te_a1", start_at=at(-5), concurrency_key="a", concurrency_limit=2),
    Execution("te_a2", start_at=at(-4), concurrency_key="a", concurrency_limit=2),
    Execution(
        "te_b_running",
        status="running",
        start_at=at(-9),
        concurrency_key="b",
        concurrency_limit=1,
    ),
    Execution("te_b1", start_at=at(-7), concurrency_key="b", concurrency_limit=1),
    Execution("te_mail", start_at=at(-1), queue="emails"),
    Execution("te_free", start_at=at(-6)),
    Execution("te_later", start_at=at(5), concurrency_key="c", concurrency_limit=1),
]


def claim_change(execution: Execution, lease_ms: int) -> Change:
    """What the claim at at(0) writes to ``execution``: the generic claim's guarded update."""
    return Change(
        updated_at=at(0),
        status="running",
        started_at=at(0),
        expires_at=at(lease_ms),  # whatever the row's timeout_ms: the executor renews it
        version=execution.version + 1,
    )


# An update that writes every column it can.
EVERY_CHANGE = Change(
    updated_at=at(1000),
    run_output='"new run output"',
    output='"new output"',
    children_tasks_completed_count=9,
    children_tasks=[{"task_id": "z", "execution_id": "te_z"}],
    children_tasks_errors=[],
    finalize_task={"task_id": "fin2", "execution_id": "te_fin2"},
    finalize_task_error={"error_type": "generic", "message": "again", "is_retryable": False},
    error={"error_type": "not_found", "message": "gone", "is_retryable": False},
    status="completed",
    is_closed=False,
    needs_promise_cancellation=False,
    retry_attempts=5,
    lease_expiries=3,
    start_at=at(1001),
    started_at=at(1002),
    finished_at=at(1003),
    expires_at=at(1004),
    version=8,
)


# --- SQLite: JSON as text, timestamps as epoch milliseconds -----------------------------------


def _json_text(value: JsonValue) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else to_epoch_ms(moment)


def _from_ms(epoch_ms: int | None) -> datetime | None:
    return None if epoch_ms is None else from_epoch_ms(epoch_ms)


def _from_json_text(text: str | None) -> JsonValue:
    return None if text is None else cast(JsonValue, json.loads(text))


def sqlite_insert(
    queries: lite.Queries, conn: sqlite3.Connection, executions: Sequence[Execution]
) -> int:
    """One ``insert_task_execution`` per execution; how many rows they stored."""
    stored = 0
    for e in executions:
        stored += queries.insert_task_execution(
            conn,
            root_task_id=e.root_task_id,
            root_execution_id=e.root_execution_id,
            parent_task_id=e.parent_task_id,
            parent_execution_id=e.parent_execution_id,
            is_finalize_task=e.is_finalize_task,
            task_id=e.task_id,
            execution_id=e.execution_id,
            retry_options=json.dumps(e.retry_options),
            sleep_ms_before_run=e.sleep_ms_before_run,
            timeout_ms=e.timeout_ms,
            run_input=e.run_input,
            run_output=e.run_output,
            output=e.output,
            children_tasks_completed_count=e.children_tasks_completed_count,
            children_tasks=_json_text(e.children_tasks),
            children_tasks_errors=_json_text(e.children_tasks_errors),
            finalize_task=_json_text(e.finalize_task),
            finalize_task_error=_json_text(e.finalize_task_error),
            error=_json_text(e.error),
            status=e.status,
            is_closed=e.is_closed,
            needs_promise_cancellation=e.needs_promise_cancellation,
            retry_attempts=e.retry_attempts,
            lease_expiries=e.lease_expiries,
            start_at=to_epoch_ms(e.start_at),
            started_at=_ms(e.started_at),
            finished_at=_ms(e.finished_at),
            expires_at=_ms(e.expires_at),
            version=e.version,
            created_at=to_epoch_ms(e.created_at),
            updated_at=to_epoch_ms(e.updated_at),
            rerun_of_execution_id=e.rerun_of_execution_id,
            trace_context=e.trace_context,
            queue=e.queue,
            concurrency_key=e.concurrency_key,
            concurrency_limit=e.concurrency_limit,
            idempotency_key=e.idempotency_key,
            priority=e.priority,
        )
    return stored


def from_sqlite(row: SqliteRow) -> Execution:
    return Execution(
        execution_id=row.execution_id,
        task_id=row.task_id,
        root_task_id=row.root_task_id,
        root_execution_id=row.root_execution_id,
        parent_task_id=row.parent_task_id,
        parent_execution_id=row.parent_execution_id,
        is_finalize_task=row.is_finalize_task,
        retry_options=_from_json_text(row.retry_options),
        sleep_ms_before_run=row.sleep_ms_before_run,
        timeout_ms=row.timeout_ms,
        run_input=row.run_input,
        run_output=row.run_output,
        output=row.output,
        children_tasks_completed_count=row.children_tasks_completed_count,
        children_tasks=_from_json_text(row.children_tasks),
        children_tasks_errors=_from_json_text(row.children_tasks_errors),
        finalize_task=_from_json_text(row.finalize_task),
        finalize_task_error=_from_json_text(row.finalize_task_error),
        error=_from_json_text(row.error),
        status=row.status,
        is_closed=row.is_closed,
        needs_promise_cancellation=row.needs_promise_cancellation,
        retry_attempts=row.retry_attempts,
        lease_expiries=row.lease_expiries,
        start_at=from_epoch_ms(row.start_at),
        started_at=_from_ms(row.started_at),
        finished_at=_from_ms(row.finished_at),
        expires_at=_from_ms(row.expires_at),
        version=row.version,
        created_at=from_epoch_ms(row.created_at),
        updated_at=from_epoch_ms(row.updated_at),
        rerun_of_execution_id=row.rerun_of_execution_id,
        trace_context=row.trace_context,
        queue=row.queue,
        concurrency_key=row.concurrency_key,
        concurrency_limit=row.concurrency_limit,
        idempotency_key=row.idempotency_key,
        priority=row.priority,
    )


class SqliteChanges(TypedDict):
    """The value parameters (``new_*``, ``unset_*``) of the SQLite update queries."""

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


def sqlite_changes(change: Change) -> SqliteChanges:
    c = change
    return SqliteChanges(
        new_run_output=c.run_output,
        new_output=c.output,
        new_children_tasks_completed_count=c.children_tasks_completed_count,
        new_children_tasks=_json_text(c.children_tasks),
        new_children_tasks_errors=_json_text(c.children_tasks_errors),
        new_finalize_task=_json_text(c.finalize_task),
        new_finalize_task_error=_json_text(c.finalize_task_error),
        unset_error=c.unset_error,
        new_error=_json_text(c.error),
        new_status=c.status,
        new_is_closed=c.is_closed,
        new_needs_promise_cancellation=c.needs_promise_cancellation,
        new_retry_attempts=c.retry_attempts,
        new_lease_expiries=c.lease_expiries,
        new_start_at=_ms(c.start_at),
        new_started_at=_ms(c.started_at),
        new_finished_at=_ms(c.finished_at),
        unset_expires_at=c.unset_expires_at,
        new_expires_at=_ms(c.expires_at),
        new_version=c.version,
        new_updated_at=to_epoch_ms(c.updated_at),
    )


class _MigrationLike(Protocol):
    @property
    def version(self) -> int: ...


# Either dialect's generated Migration class.
_M = TypeVar("_M", bound=_MigrationLike)


def _bootstrap(migrations: Sequence[_M]) -> _M:
    """Version 0: the bootstrap that runs on every migrate."""
    (bootstrap,) = [m for m in migrations if m.version == 0]
    return bootstrap


def sqlite_migrate(conn: sqlite3.Connection, table: str = lite.DEFAULT_TABLE) -> list[int]:
    """Apply the generated migrations the way a runner must; returns the versions it applied.

    ``conn`` must be in autocommit mode (``isolation_level=None``): the migration runs in one
    ``BEGIN IMMEDIATE`` transaction, which serialises concurrent migrators.
    """
    queries = lite.Queries(table)
    migrations = lite.migrations_for_table(table)
    applied_now: list[int] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in _bootstrap(migrations).statements:
            conn.execute(statement)
        applied = set(queries.get_applied_migration_versions(conn))
        for migration in migrations:
            if migration.version == 0 or migration.version in applied:
                continue
            for statement in migration.statements:
                conn.execute(statement)
            queries.insert_applied_migration(
                conn,
                version=migration.version,
                name=migration.name,
                applied_at=to_epoch_ms(datetime.now(UTC)),
            )
            applied_now.append(migration.version)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return applied_now


# --- PostgreSQL: jsonb and timestamptz, parallel arrays for the batch insert ------------------


class PostgresInsertArgs(TypedDict):
    """The parameters of ``insert_task_executions``: one array per column."""

    root_task_id: Sequence[str | None]
    root_execution_id: Sequence[str | None]
    parent_task_id: Sequence[str | None]
    parent_execution_id: Sequence[str | None]
    is_finalize_task: Sequence[bool | None]
    task_id: Sequence[str]
    execution_id: Sequence[str]
    retry_options: Sequence[JsonValue]
    sleep_ms_before_run: Sequence[int]
    timeout_ms: Sequence[int]
    run_input: Sequence[str]
    run_output: Sequence[str | None]
    output: Sequence[str | None]
    children_tasks_completed_count: Sequence[int]
    children_tasks: Sequence[JsonValue]
    children_tasks_errors: Sequence[JsonValue]
    finalize_task: Sequence[JsonValue]
    finalize_task_error: Sequence[JsonValue]
    error: Sequence[JsonValue]
    status: Sequence[str]
    is_closed: Sequence[bool]
    needs_promise_cancellation: Sequence[bool]
    retry_attempts: Sequence[int]
    lease_expiries: Sequence[int]
    start_at: Sequence[datetime]
    started_at: Sequence[datetime | None]
    finished_at: Sequence[datetime | None]
    expires_at: Sequence[datetime | None]
    version: Sequence[int]
    created_at: Sequence[datetime]
    updated_at: Sequence[datetime]
    rerun_of_execution_id: Sequence[str | None]
    trace_context: Sequence[str | None]
    queue: Sequence[str | None]
    concurrency_key: Sequence[str | None]
    concurrency_limit: Sequence[int | None]
    idempotency_key: Sequence[str | None]
    priority: Sequence[int]


def postgres_insert_args(executions: Sequence[Execution]) -> PostgresInsertArgs:
    es = executions
    return PostgresInsertArgs(
        root_task_id=[e.root_task_id for e in es],
        root_execution_id=[e.root_execution_id for e in es],
        parent_task_id=[e.parent_task_id for e in es],
        parent_execution_id=[e.parent_execution_id for e in es],
        is_finalize_task=[e.is_finalize_task for e in es],
        task_id=[e.task_id for e in es],
        execution_id=[e.execution_id for e in es],
        retry_options=[e.retry_options for e in es],
        sleep_ms_before_run=[e.sleep_ms_before_run for e in es],
        timeout_ms=[e.timeout_ms for e in es],
        run_input=[e.run_input for e in es],
        run_output=[e.run_output for e in es],
        output=[e.output for e in es],
        children_tasks_completed_count=[e.children_tasks_completed_count for e in es],
        children_tasks=[e.children_tasks for e in es],
        children_tasks_errors=[e.children_tasks_errors for e in es],
        finalize_task=[e.finalize_task for e in es],
        finalize_task_error=[e.finalize_task_error for e in es],
        error=[e.error for e in es],
        status=[e.status for e in es],
        is_closed=[e.is_closed for e in es],
        needs_promise_cancellation=[e.needs_promise_cancellation for e in es],
        retry_attempts=[e.retry_attempts for e in es],
        lease_expiries=[e.lease_expiries for e in es],
        start_at=[e.start_at for e in es],
        started_at=[e.started_at for e in es],
        finished_at=[e.finished_at for e in es],
        expires_at=[e.expires_at for e in es],
        version=[e.version for e in es],
        created_at=[e.created_at for e in es],
        updated_at=[e.updated_at for e in es],
        rerun_of_execution_id=[e.rerun_of_execution_id for e in es],
        trace_context=[e.trace_context for e in es],
        queue=[e.queue for e in es],
        concurrency_key=[e.concurrency_key for e in es],
        concurrency_limit=[e.concurrency_limit for e in es],
        idempotency_key=[e.idempotency_key for e in es],
        priority=[e.priority for e in es],
    )


def postgres_insert(
    queries: pg.Queries, conn: psycopg.Connection[Any], executions: Sequence[Execution]
) -> list[str]:
    """One ``insert_task_executions`` call: one array per column, one element per execution;
    the ids it stored."""
    return queries.insert_task_executions(conn, **postgres_insert_args(executions))


def from_postgres(row: PgRow) -> Execution:
    return Execution(
        execution_id=row.execution_id,
        task_id=row.task_id,
        root_task_id=row.root_task_id,
        root_execution_id=row.root_execution_id,
        parent_task_id=row.parent_task_id,
        parent_execution_id=row.parent_execution_id,
        is_finalize_task=row.is_finalize_task,
        retry_options=row.retry_options,
        sleep_ms_before_run=row.sleep_ms_before_run,
        timeout_ms=row.timeout_ms,
        run_input=row.run_input,
        run_output=row.run_output,
        output=row.output,
        children_tasks_completed_count=row.children_tasks_completed_count,
        children_tasks=row.children_tasks,
        children_tasks_errors=row.children_tasks_errors,
        finalize_task=row.finalize_task,
        finalize_task_error=row.finalize_task_error,
        error=row.error,
        status=row.status,
        is_closed=row.is_closed,
        needs_promise_cancellation=row.needs_promise_cancellation,
        retry_attempts=row.retry_attempts,
        lease_expiries=row.lease_expiries,
        start_at=row.start_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        expires_at=row.expires_at,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        rerun_of_execution_id=row.rerun_of_execution_id,
        trace_context=row.trace_context,
        queue=row.queue,
        concurrency_key=row.concurrency_key,
        concurrency_limit=row.concurrency_limit,
        idempotency_key=row.idempotency_key,
        priority=row.priority,
    )


class PostgresChanges(TypedDict):
    """The value parameters (``new_*``, ``unset_*``) of the PostgreSQL update queries."""

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


def postgres_changes(change: Change) -> PostgresChanges:
    c = change
    return PostgresChanges(
        new_run_output=c.run_output,
        new_output=c.output,
        new_children_tasks_completed_count=c.children_tasks_completed_count,
        new_children_tasks=c.children_tasks,
        new_children_tasks_errors=c.children_tasks_errors,
        new_finalize_task=c.finalize_task,
        new_finalize_task_error=c.finalize_task_error,
        unset_error=c.unset_error,
        new_error=c.error,
        new_status=c.status,
        new_is_closed=c.is_closed,
        new_needs_promise_cancellation=c.needs_promise_cancellation,
        new_retry_attempts=c.retry_attempts,
        new_lease_expiries=c.lease_expiries,
        new_start_at=c.start_at,
        new_started_at=c.started_at,
        new_finished_at=c.finished_at,
        unset_expires_at=c.unset_expires_at,
        new_expires_at=c.expires_at,
        new_version=c.version,
        new_updated_at=c.updated_at,
    )


def migration_lock_key(table: str) -> int:
    """A stable advisory-lock key per table name (any 64-bit value works)."""
    return zlib.crc32(table.encode())


async def postgres_migrate(
    conn: psycopg.AsyncConnection[Any], table: str = pg.DEFAULT_TABLE
) -> list[int]:
    """Apply the generated migrations in one transaction under the migration lock."""
    aqueries = pg.AsyncQueries(table)
    migrations = pg.migrations_for_table(table)
    applied_now: list[int] = []
    async with conn.transaction():
        await aqueries.lock_migrations(conn, lock_key=migration_lock_key(table))
        for statement in _bootstrap(migrations).statements:
            await conn.execute(statement)
        applied = set(await aqueries.get_applied_migration_versions(conn))
        for migration in migrations:
            if migration.version == 0 or migration.version in applied:
                continue
            for statement in migration.statements:
                await conn.execute(statement)
            await aqueries.insert_applied_migration(
                conn, version=migration.version, name=migration.name, applied_at=T0
            )
            applied_now.append(migration.version)
    return applied_now


# RenewTaskExecutionLeases (claim.sql): only a running row at exactly the given version is
# renewed; nothing but expires_at changes (not the version, not updated_at).
RENEWED = [
    Execution("te_1", status="running", version=3, expires_at=at(10)),
    Execution("te_2", status="running", version=4, expires_at=at(10)),  # asked at version 3
    Execution("te_3", status="completed", version=3),  # finished meanwhile
    Execution("te_4", status="running", version=1, expires_at=at(10)),  # not asked
]
RENEW_ASKED = {"te_1": 3, "te_2": 3, "te_3": 3, "te_missing": 0}
