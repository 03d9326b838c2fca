"""The PostgreSQL claim: the set-based statement, and the row-by-row fallback for poison rows.

See :mod:`.claiming`. A failed statement aborts a PostgreSQL transaction, so the fallback cannot
simply follow the failed set-based claim: that transaction fails (and is retried by the
executor), and the storage remembers to claim row by row, each row in a savepoint, next time.
A savepoint around every set-based claim would do without the failed attempt, but it costs two
round trips on every claim, for a row that should never exist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import psycopg

from durable_execution.generated import postgresql as pg
from durable_execution.generated.postgresql.models import DurableTaskExecution as PgRow
from durable_execution.storage import claiming, conversion
from durable_execution.storage.errors import StorageError
from durable_execution.storage.types import ClaimedTaskExecutions

# Errors of one row's values: SQLSTATE classes 22 (bigint or timestamp out of range) and 23
# (a CHECK), and psycopg's own loading errors (DataError as well).
ROW_ERRORS: Final = (psycopg.DataError, psycopg.IntegrityError)


async def claim_ready(
    conn: psycopg.AsyncConnection[Any],
    queries: pg.AsyncQueries,
    poison: claiming.PoisonSeen,
    *,
    now: datetime,
    row_limit: int,
    lease_ms: int,
) -> ClaimedTaskExecutions:
    if poison.seen:
        return await _claim_each(conn, queries, poison, now, row_limit, lease_ms)
    try:
        rows = await queries.claim_ready_task_executions(
            conn, now=now, lease_ms=lease_ms, row_limit=row_limit
        )
    except ROW_ERRORS as error:
        poison.seen = True
        raise StorageError(
            f"The claim failed on some row ({error}); the next claim goes row by row"
        ) from error
    return claiming.claimed_from_rows(
        sorted(rows, key=_claim_order), conversion.record_from_columns
    )


async def _claim_each(
    conn: psycopg.AsyncConnection[Any],
    queries: pg.AsyncQueries,
    poison: claiming.PoisonSeen,
    now: datetime,
    row_limit: int,
    lease_ms: int,
) -> ClaimedTaskExecutions:
    async def claim_one(execution_id: str) -> PgRow | None:
        async with conn.transaction():  # a savepoint: a failure undoes only this row's claim
            return await queries.claim_ready_task_execution_by_execution_id(
                conn, now=now, lease_ms=lease_ms, execution_id=execution_id
            )

    candidates = await queries.get_ready_task_executions_to_claim(
        conn, now=now, row_limit=row_limit
    )
    claimed = await claiming.claim_each_async(
        candidates, claim_one, conversion.record_from_columns, ROW_ERRORS
    )
    # The rows that failed are failed (quarantined) by the executor in this same transaction.
    poison.seen = False
    return claimed


# An unreadable start_at (see _pg_timestamps) sorts first: its row is set aside, not run.
_UNREADABLE_FIRST: Final = datetime.min.replace(tzinfo=UTC)


def _claim_order(row: PgRow) -> tuple[int, datetime, int]:
    """The claim's order: highest priority first, then FIFO (as ClaimReadyTaskExecutions)."""
    start_at = row.start_at if isinstance(row.start_at, datetime) else _UNREADABLE_FIRST
    return (-row.priority, start_at, row.id)
