"""The SQLite storage's statements, as blocking steps on one connection.

Each function runs inside a transaction its caller began; the async storage (:mod:`.sqlite`)
runs them on its event loop or worker thread, the synchronous one (:mod:`.sync_sqlite`) on the
calling thread. One place per statement, whoever runs it.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from durable_execution.generated import sqlite as lite
from durable_execution.storage import _sqlite_rows as _rows
from durable_execution.storage import _sqlite_session
from durable_execution.storage.conversion import Columns
from durable_execution.storage.errors import DuplicateExecutionIdError, StorageError
from durable_execution.storage.types import (
    TaskExecutionRecord,
    TaskExecutionWhere,
    WhereByExecutionIds,
    WhereByStatuses,
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


def insert(queries: lite.Queries, conn: sqlite3.Connection, rows: Sequence[Columns]) -> None:
    """Insert ``rows`` (refusing duplicates first; the caller holds the write lock)."""
    # Duplicates are found before anything is written, so a refused insert writes nothing (and
    # the async storage's transaction then refuses everything: see raise_if_refused). Nobody
    # else can insert between this check and the inserts: the transaction holds the write lock.
    ids = [row.execution_id for row in rows]
    repeated = [execution_id for execution_id, n in Counter(ids).items() if n > 1]
    existing = queries.get_existing_execution_ids(conn, execution_ids=ids)
    duplicates = list(dict.fromkeys([*existing, *repeated]))
    if duplicates:
        raise DuplicateExecutionIdError(duplicates)
    for row in rows:
        try:
            _rows.insert_row(queries, conn, row)
        except sqlite3.IntegrityError as error:
            raise StorageError(
                f"SQLite refused to store execution {row.execution_id}: {error}"
            ) from error


def select_ids(
    queries: lite.Queries, conn: sqlite3.Connection, where: TaskExecutionWhere, limit: int | None
) -> list[str]:
    q = queries
    match where:
        case WhereByExecutionIds():
            return q.get_task_execution_ids_by_execution_ids(
                conn,
                execution_ids=where.execution_ids,
                filter_statuses=where.statuses is not None,
                statuses=where.statuses or (),
                needs_promise_cancellation=where.needs_promise_cancellation,
                version=where.version,
                row_limit=limit,
            )
        case WhereByStatuses():
            return q.get_task_execution_ids_by_statuses(
                conn,
                statuses=where.statuses,
                is_closed=where.is_closed,
                expires_at_less_than=_rows.optional_bound(where.expires_at_less_than),
                row_limit=limit,
            )


def select_records(
    queries: lite.Queries, conn: sqlite3.Connection, where: TaskExecutionWhere, limit: int | None
) -> list[TaskExecutionRecord]:
    q = queries
    match where:
        case WhereByExecutionIds():
            rows = q.get_task_executions_by_execution_ids(
                conn,
                execution_ids=where.execution_ids,
                filter_statuses=where.statuses is not None,
                statuses=where.statuses or (),
                needs_promise_cancellation=where.needs_promise_cancellation,
                version=where.version,
                row_limit=limit,
            )
        case WhereByStatuses():
            rows = q.get_task_executions_by_statuses(
                conn,
                statuses=where.statuses,
                is_closed=where.is_closed,
                expires_at_less_than=_rows.optional_bound(where.expires_at_less_than),
                row_limit=limit,
            )
    return [_rows.record(row) for row in rows]


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
