"""The pruning lock that lets executors sharing a database prune one at a time.

``try_lock_pruning`` takes a database-wide lock for the rest of a transaction without waiting;
``prune_executions(..., exclusive=True)`` (automatic retention) takes it before each batch and
stops, with ``locked_out``, when another pruner holds it. On PostgreSQL it is an advisory lock;
on SQLite the write lock every transaction takes; in memory the storage's own lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import psycopg
import pytest

from durable_execution import PruneResult, prune_executions
from durable_execution.storage import DurableStorage, open_storage

from ._records import all_ids, insert
from .test_prune import NOW, finished


async def test_every_backend_takes_the_lock_when_no_one_holds_it(storage: DurableStorage) -> None:
    async with storage.transaction() as tx:
        assert await tx.try_lock_pruning() is True


async def test_an_exclusive_prune_deletes_like_any_other(storage: DurableStorage) -> None:
    await insert(
        storage,
        finished("te_old", days_ago=10),
        finished("te_old_child", days_ago=10, root="te_old", parent="te_old"),
        finished("te_new", days_ago=1),
    )
    result = await prune_executions(
        storage, older_than=timedelta(days=7), now=NOW, exclusive=True, batch_size=1
    )
    assert result == PruneResult(trees=1, executions_by_status={"completed": 2})
    assert not result.locked_out
    assert await all_ids(storage) == ["te_new"]


@pytest.fixture
async def pg_storage(postgres_url: str) -> AsyncIterator[DurableStorage]:
    async with open_storage(postgres_url) as storage:
        yield storage


async def test_postgresql_a_second_transaction_is_refused_the_lock_without_waiting(
    pg_storage: DurableStorage,
) -> None:
    async with pg_storage.transaction() as first:
        assert await first.try_lock_pruning()

        async def second_attempt() -> bool:
            async with pg_storage.transaction() as second:
                return await second.try_lock_pruning()

        # Refused at once (try, not wait): bounded so that a blocking lock fails the test.
        assert await asyncio.wait_for(second_attempt(), timeout=10) is False
    # Released at the end of the first transaction.
    assert await asyncio.wait_for(second_attempt(), timeout=10) is True


async def test_postgresql_a_pruner_that_finds_the_lock_held_prunes_nothing(
    pg_storage: DurableStorage,
) -> None:
    await insert(pg_storage, finished("te_a", days_ago=10), finished("te_b", days_ago=9))
    async with pg_storage.transaction() as holder:
        assert await holder.try_lock_pruning()
        blocked = await asyncio.wait_for(
            prune_executions(pg_storage, older_than=timedelta(days=7), now=NOW, exclusive=True),
            timeout=10,
        )
        assert blocked == PruneResult(trees=0, locked_out=True)
        # Without exclusive, pruning does not look at the lock (the CLI's manual prune).
        assert await all_ids(pg_storage) == ["te_a", "te_b"]
    after = await prune_executions(
        pg_storage, older_than=timedelta(days=7), now=NOW, exclusive=True
    )
    assert after.trees == 2
    assert not after.locked_out
    assert await all_ids(pg_storage) == []


async def test_postgresql_the_lock_is_per_table(
    pg_storage: DurableStorage, postgres_url: str
) -> None:
    """Two tables in one database prune independently: the key derives from the table name."""
    async with (
        open_storage(postgres_url, table_name="other_executions") as other,
        pg_storage.transaction() as first,
        other.transaction() as second,
    ):
        assert await first.try_lock_pruning()
        assert await second.try_lock_pruning()


async def test_postgresql_the_lock_is_a_transaction_advisory_lock(
    pg_storage: DurableStorage, postgres_url: str
) -> None:
    """Seen from outside: while held, pg_locks shows one advisory lock, gone at commit."""

    def advisory_locks() -> int:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ).fetchone()
        assert row is not None
        count: int = row[0]
        return count

    before = await asyncio.to_thread(advisory_locks)
    async with pg_storage.transaction() as tx:
        assert await tx.try_lock_pruning()
        assert await asyncio.to_thread(advisory_locks) == before + 1
    assert await asyncio.to_thread(advisory_locks) == before
