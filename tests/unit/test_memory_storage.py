"""The in-memory storage honours the whole storage contract (see storage/types.py)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from durable_execution import clock
from durable_execution.model import (
    ALL_STATUSES,
    ChildTaskError,
    ExecutionErrorInfo,
    RetryOptions,
    TaskExecutionStatus,
    TaskRef,
)
from durable_execution.storage import (
    DuplicateExecutionIdError,
    DurableStorageTx,
    InMemoryStorage,
    StorageError,
    TaskExecutionRecord,
    TaskExecutionUpdate,
    TaskExecutionWhere,
    WhereByExecutionIds,
    WhereByStatuses,
)

T0 = datetime(2024, 1, 1, tzinfo=clock.now().tzinfo)
ERROR = ExecutionErrorInfo(error_type="generic", message="boom", is_retryable=True)


def record(
    execution_id: str,
    *,
    status: TaskExecutionStatus = "ready",
    offset_ms: int = 0,
    **changes: object,
) -> TaskExecutionRecord:
    moment = T0 + timedelta(milliseconds=offset_ms)
    base = TaskExecutionRecord(
        task_id="task",
        execution_id=execution_id,
        retry_options=RetryOptions(max_attempts=0),
        sleep_ms_before_run=0,
        timeout_ms=1000,
        run_input='"input"',
        status=status,
        start_at=moment,
        created_at=moment,
        updated_at=moment,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def insert(storage: InMemoryStorage, *records: TaskExecutionRecord) -> None:
    async with storage.transaction() as tx:
        await tx.insert_task_executions(list(records))


async def ids(
    storage: InMemoryStorage, where: TaskExecutionWhere, limit: int | None = None
) -> list[str]:
    async with storage.transaction() as tx:
        return await tx.get_task_execution_ids(where, limit=limit)


async def test_insert_and_read_back_the_same_records() -> None:
    storage = InMemoryStorage()
    first = record("a", children_tasks=(TaskRef(task_id="c", execution_id="te_c"),))
    await insert(storage, first, record("b"))
    async with storage.transaction() as tx:
        rows = await tx.get_task_executions(WhereByExecutionIds(["b", "a", "missing"]))
    assert [row.execution_id for row in rows] == ["a", "b"]  # insertion order
    assert rows[0] == first


async def test_empty_insert_is_a_no_op() -> None:
    storage = InMemoryStorage()
    await insert(storage)
    assert storage.snapshot() == []


async def test_duplicate_ids_insert_nothing() -> None:
    storage = InMemoryStorage()
    await insert(storage, record("a"))

    async def refused_transaction() -> None:
        async with storage.transaction() as tx:
            with pytest.raises(DuplicateExecutionIdError) as raised:
                await tx.insert_task_executions([record("new"), record("a")])
            assert raised.value.execution_ids == ["a"]
            with pytest.raises(DuplicateExecutionIdError):
                await tx.insert_task_executions([record("x"), record("x")])

    # A refused transaction stays refused: later calls and leaving the block raise again.
    with pytest.raises(DuplicateExecutionIdError):
        await refused_transaction()
    assert [row.execution_id for row in storage.snapshot()] == ["a"]


async def test_rollback_leaves_nothing_behind() -> None:
    storage = InMemoryStorage()
    await insert(storage, record("a"), record("b", status="running"))
    before = storage.snapshot()

    async def write_then_fail() -> None:
        async with storage.transaction() as tx:
            await tx.insert_task_executions([record("c")])
            await tx.update_task_executions(
                WhereByExecutionIds(["a", "b", "c"]),
                TaskExecutionUpdate(updated_at=T0, status="cancelled", version=9),
            )
            assert len(await tx.get_task_execution_ids(WhereByStatuses(["cancelled"]))) == 3
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError, match="abort"):
        await write_then_fail()
    assert storage.snapshot() == before
    # The indexes were restored too, not only the rows.
    assert await ids(storage, WhereByStatuses(["cancelled"])) == []
    assert await ids(storage, WhereByStatuses(["ready"])) == ["a"]
    assert await ids(storage, WhereByStatuses(["running"])) == ["b"]


async def test_cancelled_transaction_rolls_back() -> None:
    storage = InMemoryStorage()
    inside = asyncio.Event()

    async def slow_writer() -> None:
        async with storage.transaction() as tx:
            await tx.insert_task_executions([record("a")])
            inside.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(slow_writer())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert storage.snapshot() == []


async def test_transactions_are_serialised() -> None:
    storage = InMemoryStorage()
    await insert(storage, record("counter", retry_attempts=0))

    async def increment() -> None:
        async with storage.transaction() as tx:
            (row,) = await tx.get_task_executions(WhereByExecutionIds(["counter"]))
            await asyncio.sleep(0)  # another transaction would interleave here if it could
            await tx.update_task_executions(
                WhereByExecutionIds(["counter"]),
                TaskExecutionUpdate(updated_at=T0, retry_attempts=row.retry_attempts + 1),
            )

    await asyncio.gather(*(increment() for _ in range(50)))
    assert storage.snapshot()[0].retry_attempts == 50


async def test_a_finished_transaction_cannot_be_used() -> None:
    storage = InMemoryStorage()
    async with storage.transaction() as tx:
        kept: DurableStorageTx = tx
    with pytest.raises(StorageError):
        await kept.get_task_execution_ids(WhereByStatuses(["ready"]))


@pytest.mark.parametrize(("limit", "expected"), [(None, 3), (0, 0), (2, 2), (5, 3)])
async def test_limits(limit: int | None, expected: int) -> None:
    storage = InMemoryStorage()
    await insert(storage, record("a"), record("b"), record("c"))
    for where in (
        WhereByExecutionIds(["a", "b", "c"]),
        WhereByStatuses(["ready"]),
    ):
        assert len(await ids(storage, where, limit)) == expected


async def test_negative_limit_is_refused() -> None:
    storage = InMemoryStorage()
    with pytest.raises(StorageError):
        await ids(storage, WhereByStatuses(["ready"]), -1)


async def test_statuses_order_by_updated_at() -> None:
    storage = InMemoryStorage()
    await insert(
        storage,
        record("b", status="completed", updated_at=T0 + timedelta(seconds=2)),
        record("a", status="failed", updated_at=T0 + timedelta(seconds=1)),
        record("c", status="completed", updated_at=T0 + timedelta(seconds=3)),
    )
    assert await ids(storage, WhereByStatuses(["completed", "failed"])) == ["a", "b", "c"]
    async with storage.transaction() as tx:
        await tx.update_task_executions(
            WhereByExecutionIds(["a"]), TaskExecutionUpdate(updated_at=T0 + timedelta(seconds=9))
        )
    assert await ids(storage, WhereByStatuses(["completed", "failed"])) == ["b", "c", "a"]


async def test_by_statuses_filters() -> None:
    storage = InMemoryStorage()
    await insert(
        storage,
        record("open", status="completed"),
        record("closed", status="completed", is_closed=True),
        record("soon", status="running", expires_at=T0 + timedelta(seconds=1)),
        record("later", status="running", expires_at=T0 + timedelta(seconds=5)),
        record("never", status="running"),
    )
    assert await ids(storage, WhereByStatuses(["completed"], is_closed=False)) == ["open"]
    assert await ids(storage, WhereByStatuses(["completed"], is_closed=True)) == ["closed"]
    assert await ids(storage, WhereByStatuses(["completed"])) == ["open", "closed"]
    bound = T0 + timedelta(seconds=5)
    assert await ids(storage, WhereByStatuses(["running"], expires_at_less_than=bound)) == ["soon"]
    assert await ids(storage, WhereByStatuses([])) == []
    assert set(await ids(storage, WhereByStatuses(ALL_STATUSES))) == {
        "open",
        "closed",
        "soon",
        "later",
        "never",
    }


async def test_by_execution_ids_filters_treat_false_as_a_filter() -> None:
    storage = InMemoryStorage()
    await insert(
        storage,
        record("flagged", status="cancelled", needs_promise_cancellation=True, version=3),
        record("plain", status="running", version=3),
    )
    both = ["flagged", "plain", "flagged"]
    assert await ids(storage, WhereByExecutionIds(both)) == ["flagged", "plain"]
    assert await ids(storage, WhereByExecutionIds(both, needs_promise_cancellation=True)) == [
        "flagged"
    ]
    assert await ids(storage, WhereByExecutionIds(both, needs_promise_cancellation=False)) == [
        "plain"
    ]
    assert await ids(storage, WhereByExecutionIds(both, statuses=["running"])) == ["plain"]
    assert await ids(storage, WhereByExecutionIds(both, statuses=[])) == []
    assert await ids(storage, WhereByExecutionIds(both, version=3)) == ["flagged", "plain"]
    assert await ids(storage, WhereByExecutionIds(both, version=4)) == []
    assert await ids(storage, WhereByExecutionIds([])) == []


async def test_version_guard_and_version_write() -> None:
    storage = InMemoryStorage()
    await insert(storage, record("a", version=1))
    async with storage.transaction() as tx:
        stale = await tx.update_task_executions(
            WhereByExecutionIds(["a"], version=0),
            TaskExecutionUpdate(updated_at=T0, status="running", version=1),
        )
        fresh = await tx.update_task_executions(
            WhereByExecutionIds(["a"], version=1, statuses=["ready"]),
            TaskExecutionUpdate(updated_at=T0, status="running", version=2),
        )
        again = await tx.update_task_executions(
            WhereByExecutionIds(["a"], version=1),
            TaskExecutionUpdate(updated_at=T0, status="failed", version=2),
        )
    assert (stale, fresh, again) == (0, 1, 0)
    (row,) = storage.snapshot()
    assert (row.status, row.version) == ("running", 2)


async def test_partial_update_and_unset_flags() -> None:
    storage = InMemoryStorage()
    child_error = ChildTaskError(index=0, task_id="c", execution_id="te_c", error=ERROR)
    await insert(
        storage,
        record(
            "a",
            status="running",
            error=ERROR,
            expires_at=T0 + timedelta(seconds=1),
            run_output='"kept"',
        ),
    )
    later = T0 + timedelta(seconds=7)
    async with storage.transaction() as tx:
        count = await tx.update_task_executions(
            WhereByExecutionIds(["a"], statuses=["running"]),
            TaskExecutionUpdate(
                updated_at=later,
                status="children_tasks_failed",
                children_tasks_errors=(child_error,),
                unset_error=True,
                unset_expires_at=True,
                error=ERROR,  # unset wins over a value given at the same time
                finished_at=later,
            ),
        )
    assert count == 1
    (row,) = storage.snapshot()
    assert row.status == "children_tasks_failed"
    assert row.error is None
    assert row.expires_at is None
    assert row.children_tasks_errors == (child_error,)
    assert row.run_output == '"kept"'  # None in an update leaves a field alone
    assert row.finished_at == later
    assert row.updated_at == later
    assert row.version == 0  # not written unless given


async def test_update_without_matches_changes_nothing() -> None:
    storage = InMemoryStorage()
    await insert(storage, record("a"))
    before = storage.snapshot()
    async with storage.transaction() as tx:
        assert (
            await tx.update_task_executions(
                WhereByExecutionIds(["a"], statuses=["running"]),
                TaskExecutionUpdate(updated_at=T0, status="failed"),
            )
            == 0
        )
    assert storage.snapshot() == before


async def test_index_follows_status_changes() -> None:
    storage = InMemoryStorage()
    await insert(storage, record("a"), record("b"))
    async with storage.transaction() as tx:
        await tx.update_task_executions(
            WhereByExecutionIds(["a"]),
            TaskExecutionUpdate(updated_at=T0, status="completed", is_closed=True),
        )
    assert await ids(storage, WhereByStatuses(["ready"])) == ["b"]
    assert await ids(storage, WhereByStatuses(["completed"], is_closed=True)) == ["a"]
    assert await ids(storage, WhereByStatuses(["completed"], is_closed=False)) == []


async def test_a_huge_timeout_no_longer_touches_the_claims_lease() -> None:
    # With leases renewed by the live executor, the lease is now + lease_ms whatever the row's
    # timeout_ms: a timeout stored around the option checks (2**62 ms) cannot overflow the claim.
    storage = InMemoryStorage()
    await insert(storage, record("te_big", timeout_ms=2**62), record("te_ok", offset_ms=1))
    now = T0 + timedelta(seconds=1)
    async with storage.transaction() as tx:
        claimed = await tx.claim_ready_task_executions(now=now, limit=10, lease_ms=500)
    assert [r.execution_id for r in claimed.records] == ["te_big", "te_ok"]
    assert claimed.malformed == []
    assert {r.expires_at for r in claimed.records} == {now + timedelta(milliseconds=500)}
