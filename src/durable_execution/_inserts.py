"""Inserting new executions, so that a retried insert tells the truth.

A transaction that fails after its COMMIT reached the database (the connection dropped before the
reply came back; a disk error while committing) leaves its outcome unknown, and the transaction
runner retries it. Inserted again, the executions whose first insert did commit would fail as
duplicates: the caller would be told the enqueue failed although it is stored, and retrying the
enqueue would run the task twice. So a retried insert first reads the ids it is about to insert:
a stored row with the same content (task, input, options, parent) is its own earlier insert and
counts as inserted; a stored row with other content is a real duplicate and still refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from durable_execution._coalescing import Coalescer
from durable_execution._transactions import TransactionRunner
from durable_execution.storage.errors import DuplicateExecutionIdError
from durable_execution.storage.types import (
    DurableStorageTx,
    TaskExecutionRecord,
    WhereByExecutionIds,
)

# Rows per statement: keeps each statement's id list under SQLite's bound-variable limit.
CHUNK: Final = 500


async def insert_new(tx: DurableStorageTx, records: Sequence[TaskExecutionRecord]) -> None:
    """Insert ``records`` (the first attempt: nothing of them can be stored yet)."""
    for start in range(0, len(records), CHUNK):
        await tx.insert_task_executions(records[start : start + CHUNK])


async def insert_unless_stored(
    tx: DurableStorageTx, records: Sequence[TaskExecutionRecord]
) -> None:
    """Insert those of ``records`` that an earlier attempt did not store; raise
    :class:`DuplicateExecutionIdError` for ids stored with other content."""
    missing: list[TaskExecutionRecord] = []
    foreign: list[str] = []
    for start in range(0, len(records), CHUNK):
        chunk = records[start : start + CHUNK]
        stored = await tx.get_task_executions(
            WhereByExecutionIds(execution_ids=[record.execution_id for record in chunk])
        )
        by_id = {row.execution_id: row for row in stored}
        for record in chunk:
            row = by_id.get(record.execution_id)
            if row is None:
                missing.append(record)
            elif not same_execution(row, record):
                foreign.append(record.execution_id)
    if foreign:
        raise DuplicateExecutionIdError(foreign)
    await insert_new(tx, missing)


def same_execution(stored: TaskExecutionRecord, inserted: TaskExecutionRecord) -> bool:
    """Whether ``stored`` is the row ``inserted`` created: what it was created with, not its
    state (another executor may have run it since)."""
    return (
        stored.task_id == inserted.task_id
        and stored.run_input == inserted.run_input
        and stored.retry_options == inserted.retry_options
        and stored.sleep_ms_before_run == inserted.sleep_ms_before_run
        and stored.timeout_ms == inserted.timeout_ms
        and stored.root_task == inserted.root_task
        and stored.parent_task == inserted.parent_task
    )


async def insert_records(
    tx: DurableStorageTx, records: Sequence[TaskExecutionRecord]
) -> list[None]:
    """``enqueue_task``'s coalesced insert (one result per record, as the coalescer wants)."""
    await tx.insert_task_executions(records)
    return [None] * len(records)


async def insert_records_unless_stored(
    tx: DurableStorageTx, records: Sequence[TaskExecutionRecord]
) -> list[None]:
    """Its retry after an unknown commit outcome: finds its own rows (see insert_unless_stored)."""
    await insert_unless_stored(tx, records)
    return [None] * len(records)


def enqueue_coalescer(transactions: TransactionRunner) -> Coalescer[TaskExecutionRecord, None]:
    """``enqueue_task``'s inserts: concurrent ones share a transaction, and that transaction is
    one insert statement (a batch is at most :data:`CHUNK` rows); a retry after an unknown
    commit outcome finds its own rows (see insert_unless_stored)."""
    return Coalescer(
        transactions,
        insert_records,
        max_batch=CHUNK,
        again=insert_records_unless_stored,
        single_statement=lambda records: True,
    )
