"""PostgreSQL's single-statement transactions: one statement in autocommit, never a second.

The executor sends a coalesced insert and a batch of result updates without ``BEGIN`` and
``COMMIT`` (``SingleStatementStorage``). That is only sound while such a transaction really is
one statement: a second one would commit on its own, so it must be refused before it is sent.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from durable_execution._transactions import TransactionRunner
from durable_execution.storage import (
    DurableStorage,
    StorageError,
    TaskExecutionUpdate,
    WhereByExecutionIds,
    open_storage,
)
from durable_execution.storage.types import DurableStorageTx, SingleStatementStorage

from ._records import T0, all_ids, insert, read, record


@pytest.fixture
async def pg_storage(postgres_url: str) -> AsyncIterator[DurableStorage]:
    async with open_storage(postgres_url) as opened:
        yield opened


def _single(storage: DurableStorage) -> SingleStatementStorage:
    assert isinstance(storage, SingleStatementStorage)
    return storage


async def test_a_single_statement_is_stored(pg_storage: DurableStorage) -> None:
    async with _single(pg_storage).single_statement() as tx:
        await tx.insert_task_executions([record("te_a"), record("te_b")])

    assert await all_ids(pg_storage) == ["te_a", "te_b"]


async def test_a_second_statement_is_refused_before_it_is_sent(
    pg_storage: DurableStorage,
) -> None:
    async def two_inserts() -> None:
        async with _single(pg_storage).single_statement() as tx:
            await tx.insert_task_executions([record("te_a")])
            await tx.insert_task_executions([record("te_b")])

    with pytest.raises(StorageError, match="second statement"):
        await two_inserts()

    # The first statement was its own transaction; the second never reached the server.
    assert await all_ids(pg_storage) == ["te_a"]


async def test_a_batch_update_that_needs_two_statements_sends_none(
    pg_storage: DurableStorage,
) -> None:
    await insert(pg_storage, record("te_a"))
    done = TaskExecutionUpdate(updated_at=T0, status="completed", finished_at=T0)
    closed = TaskExecutionUpdate(updated_at=T0, is_closed=True)

    with pytest.raises(StorageError, match="second statement"):
        async with _single(pg_storage).single_statement() as tx:
            # The same execution twice: the batch update would take two statements.
            await tx.update_task_executions_each(
                [(WhereByExecutionIds(["te_a"]), done), (WhereByExecutionIds(["te_a"]), closed)]
            )

    row = await read(pg_storage, "te_a")
    assert row is not None
    assert (row.status, row.is_closed) == ("ready", False)


async def test_a_refused_duplicate_stores_nothing(pg_storage: DurableStorage) -> None:
    await insert(pg_storage, record("te_a"))

    with pytest.raises(StorageError):
        async with _single(pg_storage).single_statement() as tx:
            await tx.insert_task_executions([record("te_b"), record("te_a")])

    assert await all_ids(pg_storage) == ["te_a"]


async def test_the_runner_retries_in_a_full_transaction(pg_storage: DurableStorage) -> None:
    """A retry (``again``) may read before it writes: it never runs single-statement."""
    runner = TransactionRunner(pg_storage, logging.getLogger("test"))
    attempts: list[str] = []

    async def work(tx: DurableStorageTx) -> None:
        attempts.append("work")
        await tx.insert_task_executions([record("te_a")])
        raise ConnectionError("the reply was lost")  # transient: the outcome is unknown

    async def again(tx: DurableStorageTx) -> None:
        attempts.append("again")
        if not await tx.get_task_executions(["te_a"]):
            await tx.insert_task_executions([record("te_a")])
        await tx.close_task_executions(["te_a"], now=T0)

    await runner.run(work, again=again, single_statement=True)

    assert attempts == ["work", "again"]
    row = await read(pg_storage, "te_a")
    assert row is not None
    assert row.is_closed


async def test_a_keyed_insert_needs_two_statements_and_sends_none(
    pg_storage: DurableStorage,
) -> None:
    """A record with an idempotency key is inserted and then its key's holder read: two
    statements, so a single-statement transaction refuses it before sending anything."""

    async def keyed_insert() -> None:
        async with _single(pg_storage).single_statement() as tx:
            await tx.insert_task_executions([record("te_a", idempotency_key="k")])

    with pytest.raises(StorageError, match="second statement"):
        await keyed_insert()

    assert await all_ids(pg_storage) == []
