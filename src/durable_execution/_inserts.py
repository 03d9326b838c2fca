"""Inserting new executions, so that a retried insert tells the truth.

A transaction that fails after its COMMIT reached the database (the connection dropped before the
reply came back; a disk error while committing) leaves its outcome unknown, and the transaction
runner retries it. Inserted again, the executions whose first insert did commit would fail as
duplicates: the caller would be told the enqueue failed although it is stored, and retrying the
enqueue would run the task twice. So a retried insert first reads the ids it is about to insert:
a stored row with the same content (task, input, options, parent) is its own earlier insert and
counts as inserted; a stored row with other content is a real duplicate and still refused.

Every insert returns, per record, the execution id that stands for it: its own, or, for a record
whose idempotency key an execution of its task already holds, that execution's (the storage
skips the record; see ``DurableStorageTx.insert_task_executions``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from durable_execution.storage.errors import DuplicateExecutionIdError
from durable_execution.storage.types import (
    DurableStorageTx,
    TaskExecutionRecord,
    WhereByExecutionIds,
)

# Rows per statement: keeps each statement's id list under SQLite's bound-variable limit.
CHUNK: Final = 500


async def insert_new(tx: DurableStorageTx, records: Sequence[TaskExecutionRecord]) -> list[str]:
    """Insert ``records`` (the first attempt: nothing of them can be stored yet)."""
    resolved: list[str] = []
    for start in range(0, len(records), CHUNK):
        resolved += await tx.insert_task_executions(records[start : start + CHUNK])
    return resolved


async def insert_unless_stored(
    tx: DurableStorageTx, records: Sequence[TaskExecutionRecord]
) -> list[str]:
    """Insert those of ``records`` that an earlier attempt did not store; raise
    :class:`DuplicateExecutionIdError` for ids stored with other content."""
    missing: list[TaskExecutionRecord] = []
    foreign: list[str] = []
    stored_ids: set[str] = set()
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
            else:
                stored_ids.add(record.execution_id)
    if foreign:
        raise DuplicateExecutionIdError(foreign)
    # The records stored before stand for themselves; the others resolve as a first insert does
    # (a key that an earlier attempt's record took then resolves to that record).
    inserted = iter(await insert_new(tx, missing))
    return [
        record.execution_id if record.execution_id in stored_ids else next(inserted)
        for record in records
    ]


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
        and stored.idempotency_key == inserted.idempotency_key
        and stored.priority == inserted.priority
    )
