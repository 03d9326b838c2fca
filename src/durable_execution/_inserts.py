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

import logging
from collections.abc import Sequence
from typing import Final

from durable_execution._transactions import is_transient, run_sync
from durable_execution.storage.errors import DuplicateExecutionIdError
from durable_execution.storage.sync_types import SyncStorage, SyncStorageTx
from durable_execution.storage.types import (
    DurableStorageTx,
    TaskExecutionRecord,
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
    for start in range(0, len(records), CHUNK):
        chunk = records[start : start + CHUNK]
        stored = await tx.get_task_executions(stored_ids(chunk))
        sort_stored(chunk, stored, missing, foreign)
    if foreign:
        raise DuplicateExecutionIdError(foreign)
    return merged(records, missing, await insert_new(tx, missing))


def insert_new_sync(tx: SyncStorageTx, records: Sequence[TaskExecutionRecord]) -> list[str]:
    """:func:`insert_new` for the ``SyncClient``."""
    resolved: list[str] = []
    for start in range(0, len(records), CHUNK):
        resolved += tx.insert_task_executions(records[start : start + CHUNK])
    return resolved


def insert_unless_stored_sync(
    tx: SyncStorageTx, records: Sequence[TaskExecutionRecord]
) -> list[str]:
    """:func:`insert_unless_stored` for the ``SyncClient``."""
    missing: list[TaskExecutionRecord] = []
    foreign: list[str] = []
    for start in range(0, len(records), CHUNK):
        chunk = records[start : start + CHUNK]
        sort_stored(chunk, tx.get_task_executions(stored_ids(chunk)), missing, foreign)
    if foreign:
        raise DuplicateExecutionIdError(foreign)
    return merged(records, missing, insert_new_sync(tx, missing))


def merged(
    records: Sequence[TaskExecutionRecord],
    missing: Sequence[TaskExecutionRecord],
    inserted: Sequence[str],
) -> list[str]:
    """A retried insert's result: the records an earlier attempt stored stand for themselves,
    the ``missing`` ones for what inserting them now gave (a key that an earlier attempt's
    record took then resolves to that record)."""
    again = {
        id(record): execution_id for record, execution_id in zip(missing, inserted, strict=True)
    }
    return [again.get(id(record), record.execution_id) for record in records]


def store_new_sync(
    storage: SyncStorage, logger: logging.Logger, records: Sequence[TaskExecutionRecord]
) -> list[str]:
    """A ``SyncClient``'s enqueue: ``records`` stored and committed, once; the execution id
    standing for each (its own, or its idempotency key's holder).

    Up to :data:`CHUNK` records go in one atomic write outside a transaction
    (``storage.insert_at_once``: one round trip on PostgreSQL); more need a transaction. A
    transient failure leaves the outcome unknown, so the retries (``run_sync``'s, each in a
    transaction) first look for the rows, as :func:`insert_unless_stored` does.
    """

    def again(tx: SyncStorageTx) -> list[str]:
        return insert_unless_stored_sync(tx, records)

    if len(records) > CHUNK:
        return run_sync(storage, logger, lambda tx: insert_new_sync(tx, records), again=again)
    try:
        return storage.insert_at_once(records)
    except Exception as error:
        if not is_transient(error):
            raise
        logger.warning("Insert failed, retrying in a transaction: %r", error)
        return run_sync(storage, logger, again)


def stored_ids(chunk: Sequence[TaskExecutionRecord]) -> list[str]:
    """What a retried insert reads first: the rows of the ids it is about to insert."""
    return [record.execution_id for record in chunk]


def sort_stored(
    chunk: Sequence[TaskExecutionRecord],
    stored: Sequence[TaskExecutionRecord],
    missing: list[TaskExecutionRecord],
    foreign: list[str],
) -> None:
    """Sort ``chunk`` by what ``stored`` (its rows read back) holds: records not stored go to
    ``missing``; ids stored with other content, to ``foreign``; records stored as they are,
    nowhere (an earlier attempt committed them)."""
    by_id = {row.execution_id: row for row in stored}
    for record in chunk:
        row = by_id.get(record.execution_id)
        if row is None:
            missing.append(record)
        elif not same_execution(row, record):
            foreign.append(record.execution_id)


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
        and stored.queue == inserted.queue
        and stored.concurrency_key == inserted.concurrency_key
        and stored.concurrency_limit == inserted.concurrency_limit
        and stored.idempotency_key == inserted.idempotency_key
        and stored.priority == inserted.priority
    )
