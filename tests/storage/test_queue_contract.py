"""Queues and per-key concurrency limits in the claim, on every backend (memory, SQLite,
PostgreSQL): ``claim_ready_task_executions(..., queues=...)`` and the rows' ``concurrency_key`` /
``concurrency_limit`` (storage/types.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from psycopg.pq import TransactionStatus

from durable_execution.generated import postgresql as pg
from durable_execution.generated.postgresql.models import DurableTaskExecution
from durable_execution.model import TaskExecutionStatus
from durable_execution.storage import (
    DurableStorage,
    StorageError,
    TaskExecutionRecord,
    TaskExecutionUpdate,
    WhereByExecutionIds,
    _pg_claims,
    claiming,
    migrate,
    open_storage,
)

from ._records import at, insert, read, record, update_one

LEASE_MS = 60_000


async def claim(
    storage: DurableStorage, limit: int = 100, queues: Sequence[str] | None = None
) -> list[str]:
    async with storage.transaction() as tx:
        claimed = await tx.claim_ready_task_executions(
            now=at(100), limit=limit, lease_ms=LEASE_MS, queues=queues
        )
    assert claimed.malformed == []
    return [row.execution_id for row in claimed.records]


def keyed(
    execution_id: str,
    key: str,
    limit: int,
    offset_ms: int,
    task_id: str = "task",
    status: TaskExecutionStatus = "ready",
    queue: str = "default",
) -> TaskExecutionRecord:
    return record(
        execution_id,
        status=status,
        offset_ms=offset_ms,
        task_id=task_id,
        queue=queue,
        concurrency_key=key,
        concurrency_limit=limit,
    )


async def finish(storage: DurableStorage, *execution_ids: str) -> None:
    async with storage.transaction() as tx:
        matched = await update_one(
            tx,
            WhereByExecutionIds(list(execution_ids), statuses=["running"]),
            TaskExecutionUpdate(updated_at=at(101), status="completed", finished_at=at(101)),
        )
    assert matched == len(execution_ids)


async def test_the_new_columns_round_trip(storage: DurableStorage) -> None:
    row = keyed("te_k", "customer-7", 3, 0, queue="emails")
    await insert(storage, row, record("te_plain"))
    assert await read(storage, "te_k") == row
    plain = await read(storage, "te_plain")
    assert plain is not None
    assert (plain.queue, plain.concurrency_key, plain.concurrency_limit) == ("default", None, None)


async def test_the_claim_takes_only_the_served_queues(storage: DurableStorage) -> None:
    await insert(
        storage,
        record("te_default", offset_ms=1),
        record("te_email_1", offset_ms=2, queue="emails"),
        record("te_sms", offset_ms=3, queue="sms"),
        record("te_email_2", offset_ms=4, queue="emails"),
    )
    assert await claim(storage, queues=[]) == []
    assert await claim(storage, queues=["emails", "nothing-here"]) == ["te_email_1", "te_email_2"]
    assert await claim(storage, queues=["sms", "default"]) == ["te_default", "te_sms"]
    assert await claim(storage) == []


async def test_no_queue_filter_claims_every_queue_in_fifo_order(storage: DurableStorage) -> None:
    await insert(
        storage,
        record("te_b", offset_ms=2, queue="b"),
        record("te_a", offset_ms=1, queue="a"),
        record("te_default", offset_ms=3),
    )
    assert await claim(storage, limit=2) == ["te_a", "te_b"]
    assert await claim(storage) == ["te_default"]


async def test_at_most_limit_executions_of_a_key_run_and_the_rest_wait_in_order(
    storage: DurableStorage,
) -> None:
    await insert(
        storage,
        *(keyed(f"te_a{n}", "a", 2, n) for n in range(5)),
        keyed("te_b0", "b", 2, 10),
        record("te_free", offset_ms=20),
    )
    assert await claim(storage) == ["te_a0", "te_a1", "te_b0", "te_free"]
    assert await claim(storage) == []  # a is full
    await finish(storage, "te_a1")
    assert await claim(storage) == ["te_a2"]  # one slot, taken by the oldest waiting
    await finish(storage, "te_a0", "te_a2")
    assert await claim(storage, limit=1) == ["te_a3"]  # the batch limit still applies
    assert await claim(storage) == ["te_a4"]


async def test_a_full_key_does_not_block_later_rows(storage: DurableStorage) -> None:
    await insert(
        storage,
        keyed("te_running", "a", 1, 0, status="running"),
        *(keyed(f"te_a{n}", "a", 1, n + 1) for n in range(50)),
        keyed("te_b", "b", 1, 60),
        record("te_free", offset_ms=70),
    )
    # Fifty waiting rows of the full key come first in FIFO order; they are passed over.
    assert await claim(storage, limit=1) == ["te_b"]
    assert await claim(storage, limit=1) == ["te_free"]
    assert await claim(storage, limit=1) == []


async def test_keys_are_per_task_and_the_empty_key_is_a_task_wide_pool(
    storage: DurableStorage,
) -> None:
    await insert(
        storage,
        keyed("te_x1", "k", 1, 1, task_id="x"),
        keyed("te_x2", "k", 1, 2, task_id="x"),
        keyed("te_y1", "k", 1, 3, task_id="y"),  # same key, other task: its own pool
        keyed("te_pool1", "", 2, 4, task_id="x"),
        keyed("te_pool2", "", 2, 5, task_id="x"),
        keyed("te_pool3", "", 2, 6, task_id="x"),
    )
    assert await claim(storage) == ["te_x1", "te_y1", "te_pool1", "te_pool2"]


async def test_the_smallest_limit_among_waiting_rows_applies(storage: DurableStorage) -> None:
    # The task's limit went from 3 to 1 while executions waited.
    await insert(
        storage,
        keyed("te_old", "k", 3, 1),
        keyed("te_new1", "k", 1, 2),
        keyed("te_new2", "k", 1, 3),
    )
    assert await claim(storage) == ["te_old"]
    assert await claim(storage) == []


async def test_running_rows_of_the_key_count_in_any_queue_and_only_while_running(
    storage: DurableStorage,
) -> None:
    await insert(
        storage,
        keyed("te_running", "k", 2, 0, status="running", queue="other"),
        keyed("te_waiting", "k", 2, 0, status="waiting_for_children_tasks"),
        keyed("te_done", "k", 2, 0, status="completed"),
        keyed("te_1", "k", 2, 1),
        keyed("te_2", "k", 2, 2),
    )
    # A parent waiting for its children holds no slot; the running row elsewhere does.
    assert await claim(storage, queues=["default"]) == ["te_1"]


async def test_not_yet_due_rows_are_not_claimed_and_do_not_count(
    storage: DurableStorage,
) -> None:
    await insert(storage, keyed("te_later", "k", 1, 500), keyed("te_due", "k", 1, 50))
    assert await claim(storage) == ["te_due"]


async def test_the_claim_refuses_a_bare_string_as_queues(storage: DurableStorage) -> None:
    with pytest.raises(StorageError, match="queues must be None or a sequence"):
        async with storage.transaction() as tx:
            await tx.claim_ready_task_executions(
                now=at(100),
                limit=1,
                lease_ms=LEASE_MS,
                queues="emails",
            )


async def test_a_claim_does_not_take_a_slot_that_an_uncommitted_claim_took(
    sql_storage: DurableStorage,
) -> None:
    """Two claims at once: the first holds its transaction open after claiming the key's only
    slot. On PostgreSQL the second one runs meanwhile (it must skip the key, not count the
    uncommitted claim as absent); on SQLite it waits for the first one's commit."""
    await insert(sql_storage, *(keyed(f"te_{n}", "k", 1, n) for n in range(3)))
    first_claimed = asyncio.Event()
    release = asyncio.Event()

    async def first() -> list[str]:
        async with sql_storage.transaction() as tx:
            got = await tx.claim_ready_task_executions(now=at(100), limit=10, lease_ms=LEASE_MS)
            first_claimed.set()
            await release.wait()
        return [row.execution_id for row in got.records]

    holder = asyncio.create_task(first())
    await first_claimed.wait()
    second = asyncio.create_task(claim(sql_storage))
    await asyncio.sleep(0.2)  # on PostgreSQL the second claim finishes meanwhile
    release.set()
    assert await holder == ["te_0"]
    assert await second == []
    assert await claim(sql_storage) == []


async def test_many_concurrent_claims_never_exceed_the_limit(postgres_url: str) -> None:
    """PostgreSQL runs the claims of one pool in parallel: many at once, over several keys."""
    async with open_storage(postgres_url, pool_max_size=8) as storage:
        await insert(
            storage,
            *(keyed(f"te_{key}{n}", key, 2, n) for key in "abc" for n in range(10)),
        )
        for _ in range(3):
            claims = await asyncio.gather(*(claim(storage, limit=3) for _ in range(8)))
            taken = [execution_id for got in claims for execution_id in got]
            assert len(taken) == len(set(taken))
            per_key = {key: [e for e in taken if e.startswith(f"te_{key}")] for key in "abc"}
            assert all(len(ids) <= 2 for ids in per_key.values()), per_key
            await finish(storage, *taken)


async def test_a_claim_outside_a_transaction_still_locks_the_keys_it_claims_from(
    postgres_url: str,
) -> None:
    """A claim sent on an autocommit connection (one transaction per statement) must hold its
    keys' locks while its claim statement runs: it locks and claims in a transaction of its own.
    Another connection, trying the same keys just before that statement runs, finds them held."""
    async with open_storage(postgres_url) as storage:
        await insert(
            storage,
            record("te_free", offset_ms=1),
            *(keyed(f"te_a{n}", "a", 2, 10 + n) for n in range(3)),
            keyed("te_b", "b", 1, 20),
        )
    async with (
        await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn,
        await psycopg.AsyncConnection.connect(postgres_url) as other,
    ):
        lock_key = migrate.concurrency_lock_key(pg.DEFAULT_TABLE)

        async def lockable() -> list[str]:
            """The keys another transaction could lock now (it lets them go at once)."""
            keys = await pg.AsyncQueries().lock_ready_concurrency_keys(
                other, now=at(100), any_queue=True, queues=[], row_limit=10, lock_key=lock_key
            )
            await other.rollback()
            return sorted(key.concurrency_key for key in keys)

        seen_during_claims: list[list[str]] = []

        class Spy(pg.AsyncQueries):
            async def claim_ready_task_executions(
                self, conn: psycopg.AsyncConnection[Any], **arguments: Any
            ) -> list[DurableTaskExecution]:
                seen_during_claims.append(await lockable())
                return await super().claim_ready_task_executions(conn, **arguments)

        assert await lockable() == ["a", "b"]
        claimed = await _pg_claims.claim_ready(
            conn,
            Spy(),
            claiming.PoisonSeen(),
            now=at(100),
            row_limit=10,
            lease_ms=LEASE_MS,
            queues=None,
        )
        assert [row.execution_id for row in claimed.records] == [
            "te_free",
            "te_a0",
            "te_a1",
            "te_b",
        ]
        assert seen_during_claims == [[]]  # both keys were held by the claim
        assert conn.info.transaction_status == TransactionStatus.IDLE  # and committed
        assert await lockable() == []  # both keys are full now


async def test_priorities_order_the_claim_within_a_key_and_across_both_parts(
    storage: DurableStorage,
) -> None:
    await insert(
        storage,
        keyed("te_a_low", "a", 1, 1),
        replace(keyed("te_a_high", "a", 1, 2), priority=5),
        record("te_free_low", offset_ms=0),
        record("te_free_high", offset_ms=3, priority=9),
    )
    # The key's one slot goes to its highest priority; the parts merge in claim order.
    assert await claim(storage) == ["te_free_high", "te_a_high", "te_free_low"]
    assert await claim(storage) == []
