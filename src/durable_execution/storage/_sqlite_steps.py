"""The SQLite storage's statements, as blocking steps on one connection.

Each function runs inside a transaction its caller began; the async storage (:mod:`.sqlite`)
runs them on its event loop or worker thread, the synchronous one (:mod:`.sync_sqlite`) on the
calling thread. One place per statement, whoever runs it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from durable_execution.clock import to_epoch_ms
from durable_execution.generated import sqlite as lite
from durable_execution.model import ExecutionErrorInfo
from durable_execution.storage import _sqlite_inserts, _sqlite_session, conversion
from durable_execution.storage import _sqlite_rows as _rows
from durable_execution.storage.conversion import Columns
from durable_execution.storage.error_json import error_json
from durable_execution.storage.errors import DuplicateExecutionIdError, StorageError
from durable_execution.storage.types import (
    TaskExecutionCancel,
    TaskExecutionRecord,
    WhereByExecutionIds,
)

_T = TypeVar("_T")


def translated(
    step: Callable[[sqlite3.Connection], _T], table: str, path: Path
) -> Callable[[sqlite3.Connection], _T]:
    """``step``, with the sqlite3 errors a user can act on turned into clear storage errors."""

    def run(conn: sqlite3.Connection) -> _T:
        try:
            return step(conn)
        except sqlite3.OperationalError as error:
            if _sqlite_session.is_full(error):
                raise _sqlite_session.full_error(path, error) from error
            if "no such table" in str(error):
                raise StorageError(
                    f"Table {table} does not exist ({error}): create it with migrate() "
                    "(open_storage does unless migrate=False)"
                ) from None
            raise

    return run


def insert(queries: lite.Queries, conn: sqlite3.Connection, rows: Sequence[Columns]) -> list[str]:
    """Insert ``rows`` (the caller holds the write lock); the execution id standing for each:
    its own, or the holder of its idempotency key (``DurableStorageTx.insert_task_executions``).
    """
    # Every outcome is decided before anything is written, so a refused insert writes nothing
    # (and the async storage's transaction then refuses everything: see raise_if_refused).
    # Nobody else can insert between these reads and the inserts: the caller holds the write lock.
    plan = _sqlite_inserts.plan(queries, conn, rows)
    if plan.duplicates:
        raise DuplicateExecutionIdError(plan.duplicates)
    for row in plan.inserts:
        try:
            stored = _rows.insert_row(queries, conn, row)
        except sqlite3.IntegrityError as error:
            raise StorageError(
                f"SQLite refused to store execution {row.execution_id}: {error}"
            ) from error
        if not stored:  # the insert tolerates a taken key; the write lock makes it moot
            raise StorageError(
                f"The idempotency key of execution {row.execution_id} was taken while this"
                " transaction held the write lock"
            )
    return plan.resolved


def read_by_ids(
    queries: lite.Queries, conn: sqlite3.Connection, execution_ids: Sequence[str]
) -> list[TaskExecutionRecord]:
    rows = queries.get_task_executions_by_ids(
        conn, execution_ids=list(dict.fromkeys(execution_ids))
    )
    return [_rows.record(row) for row in rows]


def cancel_one(
    queries: lite.Queries, conn: sqlite3.Connection, cancel: TaskExecutionCancel
) -> bool:
    changed = queries.cancel_task_execution(
        conn,
        error=error_text(cancel.error),
        needs_promise_cancellation=cancel.needs_promise_cancellation,
        now=to_epoch_ms(cancel.now),
        execution_id=cancel.execution_id,
        expected_status=cancel.status,
        expected_version=cancel.version,
    )
    return changed > 0


def error_text(error: ExecutionErrorInfo) -> str:
    return conversion.dump_json_text(error_json(error))


def update(
    queries: lite.Queries,
    conn: sqlite3.Connection,
    where: WhereByExecutionIds,
    changes: _rows.SqliteChanges,
) -> int:
    try:
        return queries.update_task_executions_by_execution_ids(
            conn,
            **changes,
            execution_ids=where.execution_ids,
            filter_statuses=where.statuses is not None,
            statuses=where.statuses or (),
            needs_promise_cancellation=where.needs_promise_cancellation,
            version=where.version,
        )
    except sqlite3.IntegrityError as error:
        raise StorageError(f"SQLite refused the update: {error}") from error
