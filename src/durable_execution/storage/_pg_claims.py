"""The PostgreSQL claim: the set-based statement, and the row-by-row fallback for poison rows.

Per-key concurrency limits: every claim first locks the concurrency keys it will claim from
(``LockReadyConcurrencyKeys``: a transaction-scoped advisory lock per ``(task_id,
concurrency_key)``, skipping keys another claim holds), then claims in a second statement, whose
snapshot, taken after the locks, sees every claim of those keys committed before; it takes
executions under a limit only from the keys it locked. Counting running rows and claiming in one
statement without the lock would let two concurrent claims (READ COMMITTED) both see the same
free slot and both take it. With no limited execution waiting, the first statement finds
nothing (an empty partial-index scan) and costs one round trip.

The fallback (see :mod:`.claiming`): a failed statement aborts a PostgreSQL transaction, so the
fallback cannot simply follow the failed set-based claim: that transaction fails (and is retried
by the executor), and the storage remembers to claim row by row, each row in a savepoint, next
time (under the key locks of that claim).
A savepoint around every set-based claim would do without the failed attempt, but it costs two
round trips on every claim, for a row that should never exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final

import psycopg
from psycopg.pq import TransactionStatus

from durable_execution.generated import postgresql as pg
from durable_execution.generated.postgresql.models import DurableTaskExecution as PgRow
from durable_execution.storage import claiming, conversion, migrate
from durable_execution.storage.errors import StorageError
from durable_execution.storage.types import ClaimedTaskExecutions

# Errors of one row's values: SQLSTATE classes 22 (bigint or timestamp out of range) and 23
# (a CHECK), and psycopg's own loading errors (DataError as well).
ROW_ERRORS: Final = (psycopg.DataError, psycopg.IntegrityError)


@dataclass(frozen=True, slots=True)
class _Served:
    """The claim statements' filter parameters: the served queues and the locked keys."""

    any_queue: bool
    queues: list[str]
    key_task_ids: list[str]
    key_concurrency_keys: list[str]
    key_concurrency_limits: list[int]


async def _lock_keys(
    conn: psycopg.AsyncConnection[Any],
    queries: pg.AsyncQueries,
    *,
    now: datetime,
    row_limit: int,
    queues: Sequence[str] | None,
) -> _Served:
    any_queue, names = claiming.queue_filter(queues)
    keys = await queries.lock_ready_concurrency_keys(
        conn,
        now=now,
        any_queue=any_queue,
        queues=names,
        row_limit=row_limit,
        lock_key=migrate.concurrency_lock_key(queries.table),
    )
    return _Served(
        any_queue=any_queue,
        queues=names,
        key_task_ids=[key.task_id for key in keys],
        key_concurrency_keys=[key.concurrency_key for key in keys],
        key_concurrency_limits=[key.concurrency_limit for key in keys],
    )


async def claim_ready(
    conn: psycopg.AsyncConnection[Any],
    queries: pg.AsyncQueries,
    poison: claiming.PoisonSeen,
    *,
    now: datetime,
    row_limit: int,
    lease_ms: int,
    queues: Sequence[str] | None,
) -> ClaimedTaskExecutions:
    lock = partial(_lock_keys, conn, queries, now=now, row_limit=row_limit, queues=queues)
    claim = partial(_claim, conn, queries, poison, now=now, row_limit=row_limit, lease_ms=lease_ms)
    if conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
        # Outside a transaction each statement is one, and the key locks would end with the
        # statement that takes them. Look first (the locks it takes end at once): with no key to
        # claim from, the claim statement alone is right (it takes nothing under a limit); with
        # some, lock and claim in a transaction of their own.
        served = await lock()
        if not served.key_task_ids:
            return await claim(served)
        async with conn.transaction():
            return await claim(await lock())
    return await claim(await lock())


async def _claim(
    conn: psycopg.AsyncConnection[Any],
    queries: pg.AsyncQueries,
    poison: claiming.PoisonSeen,
    served: _Served,
    *,
    now: datetime,
    row_limit: int,
    lease_ms: int,
) -> ClaimedTaskExecutions:
    """The claim under the key locks ``served`` holds (in this transaction)."""
    if poison.seen:
        return await _claim_each(conn, queries, poison, now, row_limit, lease_ms, served)
    try:
        rows = await queries.claim_ready_task_executions(
            conn,
            now=now,
            lease_ms=lease_ms,
            row_limit=row_limit,
            any_queue=served.any_queue,
            queues=served.queues,
            key_task_ids=served.key_task_ids,
            key_concurrency_keys=served.key_concurrency_keys,
            key_concurrency_limits=served.key_concurrency_limits,
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
    served: _Served,
) -> ClaimedTaskExecutions:
    async def claim_one(execution_id: str) -> PgRow | None:
        async with conn.transaction():  # a savepoint: a failure undoes only this row's claim
            return await queries.claim_ready_task_execution_by_execution_id(
                conn, now=now, lease_ms=lease_ms, execution_id=execution_id
            )

    candidates = await queries.get_ready_task_executions_to_claim(
        conn,
        now=now,
        row_limit=row_limit,
        any_queue=served.any_queue,
        queues=served.queues,
        key_task_ids=served.key_task_ids,
        key_concurrency_keys=served.key_concurrency_keys,
        key_concurrency_limits=served.key_concurrency_limits,
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
