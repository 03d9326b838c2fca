"""The storage contract for idempotency keys and priorities, on memory, SQLite and PostgreSQL.

``insert_task_executions`` skips a record whose ``(task_id, idempotency_key)`` is held and
returns the holder's id in its place; claims take the highest ``priority`` first, FIFO within
one. Concurrent inserts of one key from several transactions store one execution.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from tests._stored import all_ids as stored_ids

from durable_execution.storage import (
    DuplicateExecutionIdError,
    DurableStorage,
    TaskExecutionRecord,
)

from ._records import T0, all_ids, at, read, record


async def insert(storage: DurableStorage, *records: TaskExecutionRecord) -> list[str]:
    async with storage.transaction() as tx:
        return await tx.insert_task_executions(list(records))


def keyed(execution_id: str, key: str, **changes: object) -> TaskExecutionRecord:
    return replace(record(execution_id, idempotency_key=key), **changes)  # type: ignore[arg-type]


# --- idempotency keys -----------------------------------------------------------------------


async def test_a_taken_key_returns_its_holder_and_stores_nothing(storage: DurableStorage) -> None:
    assert await insert(storage, keyed("te_1", "order-42")) == ["te_1"]
    assert await insert(storage, keyed("te_2", "order-42", run_input='"other input"')) == ["te_1"]
    assert await all_ids(storage) == ["te_1"]
    stored = await read(storage, "te_1")
    assert stored is not None
    assert stored.idempotency_key == "order-42"
    assert stored.run_input == '"input"'  # the holder as it was: a new input changes nothing


async def test_a_key_is_held_in_any_status(storage: DurableStorage) -> None:
    for n, status in enumerate(("running", "completed", "failed", "cancelled")):
        await insert(storage, keyed(f"te_{n}", f"k{n}", status=status))
        assert await insert(storage, keyed(f"te_new_{n}", f"k{n}")) == [f"te_{n}"]
    assert await all_ids(storage) == ["te_0", "te_1", "te_2", "te_3"]


async def test_keys_are_per_task_and_keyless_records_never_conflict(
    storage: DurableStorage,
) -> None:
    resolved = await insert(
        storage,
        keyed("te_1", "k"),
        keyed("te_2", "k", task_id="other"),
        record("te_3"),
        record("te_4"),
    )
    assert resolved == ["te_1", "te_2", "te_3", "te_4"]


async def test_a_batch_resolves_keys_in_input_order(storage: DurableStorage) -> None:
    await insert(storage, keyed("te_old", "a"))
    resolved = await insert(
        storage,
        keyed("te_1", "b"),
        keyed("te_2", "a"),  # stored before this call
        keyed("te_3", "b"),  # taken by te_1, earlier in this call
        record("te_4"),
        keyed("te_5", "c"),
    )
    assert resolved == ["te_1", "te_old", "te_1", "te_4", "te_5"]
    assert await all_ids(storage) == ["te_1", "te_4", "te_5", "te_old"]  # (sorted)


async def test_a_key_taken_earlier_in_the_same_transaction(storage: DurableStorage) -> None:
    async with storage.transaction() as tx:
        assert await tx.insert_task_executions([keyed("te_1", "k")]) == ["te_1"]
        assert await tx.insert_task_executions([keyed("te_2", "k")]) == ["te_1"]
    assert await all_ids(storage) == ["te_1"]


async def test_a_rolled_back_insert_frees_its_key(storage: DurableStorage) -> None:
    async def insert_then_fail() -> None:
        async with storage.transaction() as tx:
            await tx.insert_task_executions([keyed("te_1", "k")])
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        await insert_then_fail()
    assert await insert(storage, keyed("te_2", "k")) == ["te_2"]


async def test_a_deleted_holder_frees_its_key(storage: DurableStorage) -> None:
    """Retention deletes finished trees: their keys are free again (the row is gone)."""
    await insert(storage, keyed("te_1", "k", status="completed", is_closed=True, finished_at=T0))
    async with storage.transaction() as tx:
        batch = await tx.prune_batch(
            finished_before=at(1), statuses=["completed"], after=None, limit=10, dry_run=False
        )
    assert batch.trees == 1
    assert await insert(storage, keyed("te_2", "k")) == ["te_2"]


async def test_a_duplicate_id_is_refused_unless_its_key_is_taken(storage: DurableStorage) -> None:
    await insert(storage, keyed("te_1", "k"))
    # Skipped for its key before its id is looked at: no refusal.
    assert await insert(storage, keyed("te_1", "k")) == ["te_1"]
    with pytest.raises(DuplicateExecutionIdError) as refused:
        await insert(storage, keyed("te_1", "free"))
    assert refused.value.execution_ids == ["te_1"]
    with pytest.raises(DuplicateExecutionIdError):
        await insert(storage, keyed("te_2", "x"), keyed("te_2", "y"))  # repeated in one call
    assert await all_ids(storage) == ["te_1"]


async def test_a_skipped_record_may_repeat_an_inserted_records_id(
    storage: DurableStorage,
) -> None:
    """A record skipped for its key is never stored, so its id repeating another's is no
    duplicate; it still stands for its key's holder (PostgreSQL returns the id it stored, which
    is not enough to tell the two records apart: their keys are read back)."""
    await insert(storage, keyed("te_0", "k"))
    assert await insert(storage, keyed("te_1", "free"), keyed("te_1", "k")) == ["te_1", "te_0"]
    assert await insert(storage, keyed("te_2", "k"), keyed("te_2", "new")) == ["te_0", "te_2"]
    assert await all_ids(storage) == ["te_0", "te_1", "te_2"]


async def test_concurrent_inserts_of_one_key_store_one_execution(storage: DurableStorage) -> None:
    """Many transactions at once (in parallel on PostgreSQL's pool): one wins, all agree."""

    async def enqueue(n: int) -> list[str]:
        return await insert(storage, keyed(f"te_{n}", "shared"), record(f"te_free_{n}"))

    results = await asyncio.gather(*(enqueue(n) for n in range(8)))
    winners = {result[0] for result in results}
    assert len(winners) == 1
    assert all(result[1] == f"te_free_{n}" for n, result in enumerate(results))
    assert len(await all_ids(storage)) == 1 + 8


# --- priorities -----------------------------------------------------------------------------


async def test_claims_take_higher_priorities_first_then_fifo(storage: DurableStorage) -> None:
    await insert(
        storage,
        record("te_1", priority=0, offset_ms=-3),
        record("te_2", priority=5, offset_ms=-1),
        record("te_3", priority=-2, offset_ms=-9),
        record("te_4", priority=5, offset_ms=-2),
        record("te_5", priority=0, offset_ms=-3),  # same start_at as te_1: insertion order
        record("te_6", priority=9, offset_ms=1),  # not due yet
        record("te_7", priority=2_147_483_647, status="running"),  # not ready
    )
    claimed: list[str] = []
    for limit in (3, 3, 3):
        async with storage.transaction() as tx:
            batch = await tx.claim_ready_task_executions(now=at(0), limit=limit, lease_ms=100)
        claimed.extend(r.execution_id for r in batch.records)
    assert claimed == ["te_4", "te_2", "te_1", "te_5", "te_3"]


async def test_priority_extremes_round_trip_and_order(storage: DurableStorage) -> None:
    lowest, highest = -(2**31), 2**31 - 1
    await insert(
        storage,
        record("te_low", priority=lowest),
        record("te_zero"),
        record("te_high", priority=highest),
    )
    low = await read(storage, "te_low")
    assert low is not None
    assert low.priority == lowest
    async with storage.transaction() as tx:
        batch = await tx.claim_ready_task_executions(now=at(0), limit=10, lease_ms=100)
    assert [r.execution_id for r in batch.records] == ["te_high", "te_zero", "te_low"]
    assert [r.priority for r in batch.records] == [highest, 0, lowest]
    running = await stored_ids(storage, ["running"])
    assert sorted(running) == ["te_high", "te_low", "te_zero"]
