"""The set-based operations of the storage contract, on every backend: the one-statement claim
and the batch of guarded updates (``DurableStorageTx``).

The claim must do what a read-then-guarded-write claim would do; the batch must return
exactly what a loop of one-item batches returns, and leave the same rows behind.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import psycopg
import pytest

from durable_execution.model import TaskRef
from durable_execution.storage import (
    DurableStorage,
    InspectableStorage,
    StorageError,
    TaskExecutionRecord,
    TaskExecutionUpdate,
    WhereByExecutionIds,
    open_storage,
)
from durable_execution.storage.types import (
    ClaimedTaskExecutions,
)
from durable_execution.storage.url import PostgresUrl, SqliteUrl, parse_storage_url

from ._backends import BACKENDS, SQL_BACKENDS, storage_url
from ._records import ERROR, T0, at, insert, read, record

LEASE_MS = 30


@pytest.fixture(params=BACKENDS)
async def opened(request: pytest.FixtureRequest) -> AsyncIterator[tuple[DurableStorage, str]]:
    """A fresh storage of each backend, with the URL it was opened with (for raw SQL)."""
    url = storage_url(request, request.param)
    async with open_storage(url) as storage:
        yield storage, url


@pytest.fixture(params=SQL_BACKENDS)
async def opened_sql(request: pytest.FixtureRequest) -> AsyncIterator[tuple[DurableStorage, str]]:
    url = storage_url(request, request.param)
    async with open_storage(url) as storage:
        yield storage, url


async def claim(storage: DurableStorage, limit: int, now_ms: int = 5) -> ClaimedTaskExecutions:
    async with storage.transaction() as tx:
        return await tx.claim_ready_task_executions(now=at(now_ms), limit=limit, lease_ms=LEASE_MS)


def claimed_form(before: TaskExecutionRecord, now_ms: int) -> TaskExecutionRecord:
    """``before`` as the claim must leave it (a guarded ready -> running write, per row)."""
    return replace(
        before,
        status="running",
        started_at=at(now_ms),
        updated_at=at(now_ms),
        expires_at=at(now_ms + LEASE_MS),
        version=before.version + 1,
    )


def execute_raw(url: str, statement: str) -> None:
    """One statement behind the storage's back (to store what the storage would refuse)."""
    target = parse_storage_url(url)
    if isinstance(target, SqliteUrl):
        conn = sqlite3.connect(target.path, isolation_level=None)
        try:
            conn.execute(statement)
        finally:
            conn.close()
        return
    assert isinstance(target, PostgresUrl)
    with psycopg.connect(target.conninfo, autocommit=True) as pg:
        pg.execute(statement.encode())


class _Rollback(Exception):
    pass


# --- the claim ----------------------------------------------------------------------------------

CLAIM_ROWS = [
    # Inserted out of start_at order, so that FIFO differs from insertion order.
    record("te_3", start_at=at(3), timeout_ms=300),
    record("te_2a", start_at=at(2), timeout_ms=200),
    record("te_2b", start_at=at(2), timeout_ms=250),
    record("te_1", start_at=at(1), timeout_ms=100, version=4),
    record("te_now", start_at=at(5), timeout_ms=86_400_000 * 30),  # start_at == now
    record("te_future", start_at=at(6)),
    record("te_running", status="running", start_at=at(0)),
    record("te_waiting", status="waiting_for_children_tasks", start_at=at(0)),
    record("te_done", status="completed", start_at=at(0), is_closed=True),
]
BY_ID = {r.execution_id: r for r in CLAIM_ROWS}


async def test_every_bundled_transaction_offers_both_set_operations(
    storage: DurableStorage,
) -> None:
    async with storage.transaction() as tx:
        assert callable(tx.claim_ready_task_executions)
        assert callable(tx.update_task_executions_each)


async def test_claim_is_fifo_with_ties_by_insertion_and_honours_the_limit(
    opened: tuple[DurableStorage, str],
) -> None:
    storage, _ = opened
    await insert(storage, *CLAIM_ROWS)
    first = await claim(storage, 3)
    assert first.malformed == []
    assert [r.execution_id for r in first.records] == ["te_1", "te_2a", "te_2b"]
    second = await claim(storage, 10)
    # start_at == now is due; start_at > now and rows that are not ready are left alone.
    assert [r.execution_id for r in second.records] == ["te_3", "te_now"]
    assert (await claim(storage, 10)).records == []
    for claimed in [*first.records, *second.records]:
        before = BY_ID[claimed.execution_id]
        # The same lease whatever the row's timeout_ms (te_now's is 30 days: the executor
        # renews the lease and enforces the timeout); version bumped; what a read returns.
        assert claimed == claimed_form(before, 5)
        assert await read(storage, claimed.execution_id) == claimed
    for untouched in ("te_future", "te_running", "te_waiting", "te_done"):
        assert await read(storage, untouched) == BY_ID[untouched]


async def test_claim_limit_zero_claims_nothing_and_a_huge_limit_claims_all(
    storage: DurableStorage,
) -> None:
    await insert(storage, *CLAIM_ROWS)
    assert await claim(storage, 0) == ClaimedTaskExecutions(records=[], malformed=[])
    assert await read(storage, "te_1") == BY_ID["te_1"]
    everything = await claim(storage, 2**40)
    assert [r.execution_id for r in everything.records] == [
        "te_1",
        "te_2a",
        "te_2b",
        "te_3",
        "te_now",
    ]


async def test_claim_refuses_bad_arguments(storage: DurableStorage) -> None:
    await insert(storage, *CLAIM_ROWS)
    async with storage.transaction() as tx:
        claimer = tx
        with pytest.raises(StorageError, match="limit"):
            await claimer.claim_ready_task_executions(now=at(5), limit=-1, lease_ms=1)
        with pytest.raises(StorageError, match="lease_ms"):
            await claimer.claim_ready_task_executions(now=at(5), limit=1, lease_ms=0)
        with pytest.raises(ValueError, match="naive"):
            await claimer.claim_ready_task_executions(
                now=T0.replace(tzinfo=None), limit=1, lease_ms=1
            )
    assert await read(storage, "te_1") == BY_ID["te_1"]


async def test_a_rolled_back_claim_leaves_the_rows_ready(storage: DurableStorage) -> None:
    await insert(storage, *CLAIM_ROWS)

    async def claim_then_fail() -> None:
        async with storage.transaction() as tx:
            got = await tx.claim_ready_task_executions(now=at(5), limit=2, lease_ms=1)
            assert len(got.records) == 2
            raise _Rollback

    with pytest.raises(_Rollback):
        await claim_then_fail()
    assert [r.execution_id for r in (await claim(storage, 2)).records] == ["te_1", "te_2a"]


async def test_a_malformed_row_is_claimed_and_reported_apart(
    opened_sql: tuple[DurableStorage, str],
) -> None:
    storage, url = opened_sql
    await insert(storage, *CLAIM_ROWS)
    # Valid JSON that does not decode as retry options (max_attempts missing).
    execute_raw(
        url,
        "UPDATE durable_task_executions SET retry_options = '{}' WHERE execution_id = 'te_2a'",
    )
    result = await claim(storage, 3)
    assert [r.execution_id for r in result.records] == ["te_1", "te_2b"]
    assert [(e.execution_id, e.column) for e in result.malformed] == [("te_2a", "retry_options")]
    # It was claimed too (the caller fails it in the same transaction): never claimed again.
    assert [r.execution_id for r in (await claim(storage, 10)).records] == ["te_3", "te_now"]
    # (A row that cannot be decoded is listed as its MalformedRowError.)
    assert isinstance(storage, InspectableStorage)
    running = await storage.list_task_executions(statuses=["running"], limit=100)
    assert "te_2a" in [row.execution_id for row in running]


async def test_concurrent_postgres_claims_take_disjoint_rows(postgres_url: str) -> None:
    async with open_storage(postgres_url) as storage:
        await insert(storage, *CLAIM_ROWS)
        holding = asyncio.Event()
        release = asyncio.Event()

        async def first_claim() -> list[str]:
            async with storage.transaction() as tx:
                got = await tx.claim_ready_task_executions(now=at(5), limit=2, lease_ms=1)
                holding.set()
                await release.wait()  # keeps its row locks until the others have claimed
                return [r.execution_id for r in got.records]

        first = asyncio.create_task(first_claim())
        await holding.wait()
        second = await claim(storage, 2)
        third = await claim(storage, 10)
        release.set()
        assert await first == ["te_1", "te_2a"]
        assert [r.execution_id for r in second.records] == ["te_2b", "te_3"]
        assert [r.execution_id for r in third.records] == ["te_now"]


# --- update_task_executions_each ----------------------------------------------------------------

EACH_ROWS = [
    record("te_a", version=1),
    record("te_b", status="running", version=2, needs_promise_cancellation=True),
    record("te_c", status="completed", error=ERROR, expires_at=at(9)),
    record("te_d", version=5),
]


def each_updates() -> list[tuple[WhereByExecutionIds, TaskExecutionUpdate]]:
    """A mix of guards, filters and repeats; the expected counts are in EACH_COUNTS."""
    run = TaskExecutionUpdate(updated_at=at(10), status="running", started_at=at(10), version=2)
    return [
        # 0: the version guard matches and bumps the version.
        (WhereByExecutionIds(["te_a"], statuses=["ready"], version=1), run),
        # 1: the same row again with the old version: the first write makes it stale.
        (WhereByExecutionIds(["te_a"], version=1), replace(run, status="cancelled")),
        # 2: the same row with the new version: it matches (only in order, as in a loop).
        (
            WhereByExecutionIds(["te_a"], version=2),
            TaskExecutionUpdate(updated_at=at(11), output='"out"', version=3),
        ),
        # 3: a status filter that does not match.
        (WhereByExecutionIds(["te_b"], statuses=["ready"]), run),
        # 4: needs_promise_cancellation filter; several ids, one repeated, one unknown.
        (
            WhereByExecutionIds(
                ["te_b", "te_c", "te_b", "te_missing"], needs_promise_cancellation=True
            ),
            TaskExecutionUpdate(
                updated_at=at(12),
                children_tasks=(TaskRef(task_id="k", execution_id="te_k"),),
                retry_attempts=7,
            ),
        ),
        # 5: matches nothing without a statement (empty ids), even with a naive timestamp.
        (WhereByExecutionIds([]), TaskExecutionUpdate(updated_at=T0.replace(tzinfo=None))),
        # 6: an empty status list matches nothing.
        (WhereByExecutionIds(["te_d"], statuses=[]), run),
        # 7: unset flags, two rows with no filter.
        (
            WhereByExecutionIds(["te_c", "te_d"]),
            TaskExecutionUpdate(updated_at=at(13), unset_error=True, unset_expires_at=True),
        ),
        # 8: a stale version guard.
        (WhereByExecutionIds(["te_d"], version=4), run),
    ]


EACH_COUNTS = [1, 0, 1, 0, 1, 0, 0, 2, 0]


async def outcome(
    storage: DurableStorage, *, batched: bool
) -> tuple[list[int], list[TaskExecutionRecord]]:
    """Counts and every row after the updates, read in the transaction, then rolled back."""
    result: tuple[list[int], list[TaskExecutionRecord]] | None = None

    async def update_read_and_roll_back() -> None:
        nonlocal result
        async with storage.transaction() as tx:
            updates = each_updates()
            if batched:
                counts = await tx.update_task_executions_each(updates)
            else:
                counts = [(await tx.update_task_executions_each([item]))[0] for item in updates]
            rows = await tx.get_task_executions([r.execution_id for r in EACH_ROWS])
            result = (counts, sorted(rows, key=lambda r: r.execution_id))
            raise _Rollback

    with pytest.raises(_Rollback):
        await update_read_and_roll_back()
    assert result is not None
    return result


async def test_update_each_equals_the_loop(storage: DurableStorage) -> None:
    await insert(storage, *EACH_ROWS)
    looped = await outcome(storage, batched=False)
    batched = await outcome(storage, batched=True)
    assert batched == looped
    assert batched[0] == EACH_COUNTS
    rows = {r.execution_id: r for r in batched[1]}
    assert (rows["te_a"].status, rows["te_a"].version, rows["te_a"].output) == (
        "running",
        3,
        '"out"',
    )
    assert rows["te_b"].retry_attempts == 7
    assert rows["te_c"].retry_attempts == 0  # needs_promise_cancellation is False there
    assert (rows["te_c"].error, rows["te_c"].expires_at) == (None, None)
    assert rows["te_d"] == replace(EACH_ROWS[3], updated_at=at(13))


async def test_update_each_commits_like_any_write(storage: DurableStorage) -> None:
    await insert(storage, *EACH_ROWS)
    async with storage.transaction() as tx:
        assert await tx.update_task_executions_each(each_updates()) == EACH_COUNTS
    back = await read(storage, "te_a")
    assert back is not None
    assert (back.version, back.output) == (3, '"out"')


async def test_update_each_of_many_distinct_rows(storage: DurableStorage) -> None:
    rows = [record(f"te_{n:03}", version=n % 3) for n in range(250)]
    await insert(storage, *rows)
    updates = [
        (
            WhereByExecutionIds([r.execution_id], version=1),
            TaskExecutionUpdate(updated_at=at(1), retry_attempts=n, version=2),
        )
        for n, r in enumerate(rows)
    ]
    async with storage.transaction() as tx:
        counts = await tx.update_task_executions_each(updates)
    assert counts == [1 if r.version == 1 else 0 for r in rows]
    for n in (0, 1, 2, 247, 249):
        back = await read(storage, f"te_{n:03}")
        assert back is not None
        assert back.retry_attempts == (n if n % 3 == 1 else 0)


async def test_update_each_of_nothing_is_empty(storage: DurableStorage) -> None:
    async with storage.transaction() as tx:
        assert await tx.update_task_executions_each([]) == []


async def test_update_each_refuses_a_naive_timestamp_before_writing(
    sql_storage: DurableStorage,
) -> None:
    await insert(sql_storage, *EACH_ROWS)
    good = TaskExecutionUpdate(updated_at=at(1), status="cancelled")
    bad = TaskExecutionUpdate(updated_at=at(1), finished_at=T0.replace(tzinfo=None))
    async with sql_storage.transaction() as tx:
        with pytest.raises(ValueError, match="naive"):
            await tx.update_task_executions_each(
                [(WhereByExecutionIds(["te_a"]), good), (WhereByExecutionIds(["te_d"]), bad)]
            )
    assert await read(sql_storage, "te_a") == EACH_ROWS[0]


async def test_the_lease_is_now_plus_lease_ms_whatever_the_timeout(storage: DurableStorage) -> None:
    # The lease arithmetic is plain millisecond addition on every backend; a one-hour timeout
    # does not make a crashed attempt wait an hour.
    await insert(storage, record("te_x", start_at=at(0), timeout_ms=3_600_000))
    result = await claim(storage, 1, now_ms=0)
    (claimed,) = result.records
    assert claimed.expires_at == at(0) + timedelta(milliseconds=LEASE_MS)
