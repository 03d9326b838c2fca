"""The in-memory storage honours the whole storage contract (see storage/types.py)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from durable_execution import clock
from durable_execution.model import (
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
    TaskExecutionCancel,
    TaskExecutionRecord,
    TaskExecutionUpdate,
    WhereByExecutionIds,
)

T0 = datetime(2024, 1, 1, tzinfo=clock.now().tzinfo)
ERROR = ExecutionErrorInfo(error_type="generic", message="boom", is_retryable=True)
CANCELLED = ExecutionErrorInfo(error_type="cancelled", message="stop", is_retryable=False)
LATER = T0 + timedelta(seconds=30)


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


async def update(
    storage: InMemoryStorage, where: WhereByExecutionIds, change: TaskExecutionUpdate
) -> int:
    async with storage.transaction() as tx:
        return (await tx.update_task_executions_each([(where, change)]))[0]


def stored(storage: InMemoryStorage) -> dict[str, TaskExecutionRecord]:
    return {row.execution_id: row for row in storage.snapshot()}


async def unclosed_ids(storage: InMemoryStorage, limit: int = 100) -> list[str]:
    async with storage.transaction() as tx:
        rows = await tx.get_finished_unclosed_task_executions(limit=limit)
        assert await tx.get_finished_unclosed_task_execution_ids(limit=limit) == [
            row.execution_id for row in rows
        ]
    return [row.execution_id for row in rows]


async def expired_ids(storage: InMemoryStorage, now: datetime, limit: int = 100) -> list[str]:
    async with storage.transaction() as tx:
        return [
            row.execution_id for row in await tx.get_expired_task_executions(now=now, limit=limit)
        ]


async def claimed_ids(storage: InMemoryStorage) -> list[str]:
    async with storage.transaction() as tx:
        claimed = await tx.claim_ready_task_executions(now=LATER, limit=100, lease_ms=1000)
    return [row.execution_id for row in claimed.records]


# --- inserts, reads by id, transactions ---------------------------------------------------------


async def test_insert_and_read_back_the_same_records() -> None:
    storage = InMemoryStorage()
    first = record("a", children_tasks=(TaskRef(task_id="c", execution_id="te_c"),))
    await insert(storage, first, record("b"))
    async with storage.transaction() as tx:
        rows = await tx.get_task_executions(["b", "a", "missing", "b"])
        assert await tx.get_task_executions([]) == []
    assert [row.execution_id for row in rows] == ["a", "b"]  # insertion order, once each
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
    await insert(
        storage, record("a"), record("b", status="running", expires_at=T0 + timedelta(seconds=1))
    )
    before = storage.snapshot()

    async def write_then_fail() -> None:
        async with storage.transaction() as tx:
            await tx.insert_task_executions([record("c")])
            await tx.update_task_executions_each(
                [
                    (
                        WhereByExecutionIds(["a", "b", "c"]),
                        TaskExecutionUpdate(updated_at=T0, status="cancelled", version=9),
                    )
                ]
            )
            rows = await tx.get_task_executions(["a", "b", "c"])
            assert [row.status for row in rows] == ["cancelled"] * 3
            assert len(await tx.get_finished_unclosed_task_executions(limit=10)) == 3
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError, match="abort"):
        await write_then_fail()
    assert storage.snapshot() == before
    # The indexes were restored too, not only the rows.
    assert await unclosed_ids(storage) == []
    assert await expired_ids(storage, LATER) == ["b"]
    assert await claimed_ids(storage) == ["a"]


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
            (row,) = await tx.get_task_executions(["counter"])
            await asyncio.sleep(0)  # another transaction would interleave here if it could
            await tx.update_task_executions_each(
                [
                    (
                        WhereByExecutionIds(["counter"]),
                        TaskExecutionUpdate(updated_at=T0, retry_attempts=row.retry_attempts + 1),
                    )
                ]
            )

    await asyncio.gather(*(increment() for _ in range(50)))
    assert storage.snapshot()[0].retry_attempts == 50


async def test_a_finished_transaction_cannot_be_used() -> None:
    storage = InMemoryStorage()
    async with storage.transaction() as tx:
        kept: DurableStorageTx = tx
    with pytest.raises(StorageError):
        await kept.get_task_executions(["a"])


# --- the named reads ----------------------------------------------------------------------------


async def test_finished_ids_are_read_in_insertion_order() -> None:
    storage = InMemoryStorage()
    await insert(
        storage,
        record("done", status="completed", is_closed=True),
        record("active", status="running"),
        record("failed", status="failed"),
        record("waiting", status="waiting_for_children_tasks"),
        record("cancelled", status="cancelled"),
    )
    asked = ["cancelled", "missing", "active", "failed", "done", "waiting", "done"]
    async with storage.transaction() as tx:
        assert await tx.get_finished_task_execution_ids(asked) == ["done", "failed", "cancelled"]
        assert await tx.get_finished_task_execution_ids([]) == []


@pytest.mark.parametrize(("limit", "expected"), [(1, 1), (2, 2), (5, 3)])
async def test_limits(limit: int, expected: int) -> None:
    storage = InMemoryStorage()
    expires_at = T0 + timedelta(seconds=1)
    await insert(
        storage,
        *(record(f"f{i}", status="completed") for i in range(3)),
        *(record(f"r{i}", status="running", expires_at=expires_at) for i in range(3)),
        *(record(f"c{i}", status="running", needs_promise_cancellation=True) for i in range(3)),
    )
    assert len(await unclosed_ids(storage, limit)) == expected
    assert len(await expired_ids(storage, LATER, limit)) == expected
    async with storage.transaction() as tx:
        taken = await tx.take_cancellation_requests(["c0", "c1", "c2"], now=LATER, limit=limit)
    assert len(taken) == expected


async def test_limits_below_one_are_refused() -> None:
    storage = InMemoryStorage()
    with pytest.raises(StorageError):
        await unclosed_ids(storage, 0)
    with pytest.raises(StorageError):
        await expired_ids(storage, LATER, -1)


async def test_finished_unclosed_are_read_oldest_updated_first() -> None:
    storage = InMemoryStorage()
    await insert(
        storage,
        record("b", status="completed", updated_at=T0 + timedelta(seconds=2)),
        record("a", status="failed", updated_at=T0 + timedelta(seconds=1)),
        record("c", status="completed", updated_at=T0 + timedelta(seconds=3)),
        record("tie", status="cancelled", updated_at=T0 + timedelta(seconds=1)),
    )
    assert await unclosed_ids(storage) == ["a", "tie", "b", "c"]  # ties by insertion
    assert await unclosed_ids(storage, 2) == ["a", "tie"]
    async with storage.transaction() as tx:
        assert await tx.postpone_closing_task_executions(["a"], now=T0 + timedelta(seconds=9)) == 1
    assert await unclosed_ids(storage) == ["tie", "b", "c", "a"]


async def test_finished_unclosed_leave_out_closed_and_active_rows() -> None:
    storage = InMemoryStorage()
    await insert(
        storage,
        record("open", status="completed"),
        record("closed", status="completed", is_closed=True),
        record("running", status="running"),
        record("waiting", status="waiting_for_finalize_task"),
        record("failed", status="children_tasks_failed"),
    )
    assert await unclosed_ids(storage) == ["open", "failed"]
    async with storage.transaction() as tx:
        among = await tx.get_finished_unclosed_task_executions(
            limit=10, execution_ids=["failed", "closed", "running", "missing"]
        )
        assert [row.execution_id for row in among] == ["failed"]
        assert await tx.get_finished_unclosed_task_executions(limit=10, execution_ids=[]) == []


async def test_expired_are_running_unclosed_rows_past_their_lease() -> None:
    storage = InMemoryStorage()
    bound = T0 + timedelta(seconds=5)
    await insert(
        storage,
        record("soon", status="running", expires_at=T0 + timedelta(seconds=1)),
        record("later", status="running", expires_at=bound),  # not strictly before: kept
        record("never", status="running"),
        record("ready", status="ready", expires_at=T0),
        record("closed", status="running", is_closed=True, expires_at=T0),
        record(
            "older",
            status="running",
            expires_at=T0 + timedelta(seconds=2),
            updated_at=T0 - timedelta(seconds=1),
        ),
    )
    assert await expired_ids(storage, bound) == ["older", "soon"]  # oldest updated_at first
    assert await expired_ids(storage, bound, 1) == ["older"]
    assert await expired_ids(storage, T0) == []


# --- the named writes ---------------------------------------------------------------------------


async def test_close_marks_rows_closed() -> None:
    storage = InMemoryStorage()
    await insert(storage, record("a", status="completed"), record("b", status="failed"))
    async with storage.transaction() as tx:
        assert await tx.close_task_executions(["a", "missing"], now=LATER) == 1
        assert await tx.close_task_executions([], now=LATER) == 0
    rows = stored(storage)
    assert (rows["a"].is_closed, rows["a"].updated_at) == (True, LATER)
    assert rows["a"] == replace(record("a", status="completed"), is_closed=True, updated_at=LATER)
    assert rows["b"] == record("b", status="failed")
    assert await unclosed_ids(storage) == ["b"]


async def test_postpone_only_moves_updated_at() -> None:
    storage = InMemoryStorage()
    await insert(storage, record("a", status="completed", version=4), record("b"))
    async with storage.transaction() as tx:
        assert await tx.postpone_closing_task_executions(["a", "missing"], now=LATER) == 1
    rows = stored(storage)
    assert rows["a"] == replace(record("a", status="completed", version=4), updated_at=LATER)
    assert rows["b"] == record("b")


async def test_cancel_one_execution_is_guarded_by_status_and_version() -> None:
    storage = InMemoryStorage()
    await insert(storage, record("a", status="running", version=3, expires_at=T0))
    async with storage.transaction() as tx:
        assert not await tx.cancel_task_execution(
            TaskExecutionCancel(
                "a",
                status="ready",
                version=3,
                error=CANCELLED,
                needs_promise_cancellation=True,
                now=LATER,
            )
        )
        assert not await tx.cancel_task_execution(
            TaskExecutionCancel(
                "a",
                status="running",
                version=2,
                error=CANCELLED,
                needs_promise_cancellation=True,
                now=LATER,
            )
        )
        assert not await tx.cancel_task_execution(
            TaskExecutionCancel(
                "missing",
                status="running",
                version=3,
                error=CANCELLED,
                needs_promise_cancellation=True,
                now=LATER,
            )
        )
    assert stored(storage)["a"] == record("a", status="running", version=3, expires_at=T0)
    async with storage.transaction() as tx:
        assert await tx.cancel_task_execution(
            TaskExecutionCancel(
                "a",
                status="running",
                version=3,
                error=CANCELLED,
                needs_promise_cancellation=True,
                now=LATER,
            )
        )
    row = stored(storage)["a"]
    assert (row.status, row.error, row.needs_promise_cancellation) == ("cancelled", CANCELLED, True)
    assert (row.finished_at, row.updated_at, row.version) == (LATER, LATER, 4)
    assert await unclosed_ids(storage) == ["a"]


async def test_cancel_one_ready_execution_without_the_flag() -> None:
    storage = InMemoryStorage()
    await insert(storage, record("a"))
    async with storage.transaction() as tx:
        assert await tx.cancel_task_execution(
            TaskExecutionCancel(
                "a",
                status="ready",
                version=0,
                error=CANCELLED,
                needs_promise_cancellation=False,
                now=LATER,
            )
        )
    row = stored(storage)["a"]
    assert (row.status, row.needs_promise_cancellation, row.version) == ("cancelled", False, 1)
    assert await claimed_ids(storage) == []


async def test_cancel_active_leaves_finished_rows_and_spares_local_runs_the_flag() -> None:
    storage = InMemoryStorage()
    await insert(
        storage,
        record("ready", version=2),
        record("done", status="completed"),
        record("here", status="running", version=5),
        record("elsewhere", status="running", version=1),
        record("waiting", status="waiting_for_children_tasks"),
    )
    async with storage.transaction() as tx:
        cancelled = await tx.cancel_active_task_executions(
            ["waiting", "done", "missing", "elsewhere", "here", "ready"],
            error=CANCELLED,
            now=LATER,
            running_here={"here", "done"},
        )
    assert cancelled == ["ready", "here", "elsewhere", "waiting"]  # insertion order
    rows = stored(storage)
    assert rows["done"] == record("done", status="completed")
    for execution_id, version in [("ready", 2), ("here", 5), ("elsewhere", 1), ("waiting", 0)]:
        row = rows[execution_id]
        assert (row.status, row.error, row.version) == ("cancelled", CANCELLED, version)
        assert (row.finished_at, row.updated_at) == (LATER, LATER)
        assert row.needs_promise_cancellation is (execution_id != "here")
    async with storage.transaction() as tx:
        assert (
            await tx.cancel_active_task_executions(
                ["ready", "done"], error=CANCELLED, now=LATER, running_here=()
            )
            == []
        )


async def test_take_cancellation_requests_clears_the_flag() -> None:
    storage = InMemoryStorage()
    await insert(
        storage,
        record("b", status="cancelled", needs_promise_cancellation=True),
        record("plain", status="running"),
        record("a", status="cancelled", needs_promise_cancellation=True),
        record("other", status="cancelled", needs_promise_cancellation=True),
    )
    async with storage.transaction() as tx:
        taken = await tx.take_cancellation_requests(
            ["a", "plain", "missing", "b"], now=LATER, limit=1
        )
        assert taken == ["b"]  # insertion order, up to the limit
        assert await tx.take_cancellation_requests(["a", "plain", "b"], now=LATER, limit=10) == [
            "a"
        ]
        assert await tx.take_cancellation_requests(["a", "plain", "b"], now=LATER, limit=10) == []
    rows = stored(storage)
    for execution_id in ("a", "b"):
        row = rows[execution_id]
        assert (row.needs_promise_cancellation, row.updated_at) == (False, LATER)
        assert (row.status, row.version) == ("cancelled", 0)
    assert rows["plain"] == record("plain", status="running")
    assert rows["other"].needs_promise_cancellation  # not asked for


async def test_fail_unreadable_fails_only_active_rows() -> None:
    storage = InMemoryStorage()
    await insert(
        storage,
        record("a", status="running", error=ERROR, expires_at=T0, version=2),
        record("done", status="completed", is_closed=True),
    )
    async with storage.transaction() as tx:
        assert await tx.fail_unreadable_task_execution("a", error=CANCELLED, now=LATER)
        assert not await tx.fail_unreadable_task_execution("done", error=CANCELLED, now=LATER)
        assert not await tx.fail_unreadable_task_execution("missing", error=CANCELLED, now=LATER)
    rows = stored(storage)
    row = rows["a"]
    assert (row.status, row.error, row.expires_at) == ("failed", CANCELLED, None)
    assert (row.started_at, row.finished_at, row.updated_at) == (LATER, LATER, LATER)
    assert rows["done"] == record("done", status="completed", is_closed=True)
    assert await unclosed_ids(storage) == ["a"]
    assert await expired_ids(storage, LATER) == []


# --- the guarded update -------------------------------------------------------------------------


async def test_update_guards_treat_false_as_a_value() -> None:
    storage = InMemoryStorage()
    await insert(
        storage,
        record("flagged", status="cancelled", needs_promise_cancellation=True, version=3),
        record("plain", status="running", version=3),
    )
    both = ["flagged", "plain", "flagged"]
    touch = TaskExecutionUpdate(updated_at=T0)
    async with storage.transaction() as tx:
        assert await tx.update_task_executions_each(
            [
                (WhereByExecutionIds(both), touch),
                (WhereByExecutionIds(both, needs_promise_cancellation=True), touch),
                (WhereByExecutionIds(both, needs_promise_cancellation=False), touch),
                (WhereByExecutionIds(both, statuses=["running"]), touch),
                (WhereByExecutionIds(both, statuses=[]), touch),
                (WhereByExecutionIds(both, version=3), touch),
                (WhereByExecutionIds(both, version=4), touch),
                (WhereByExecutionIds([]), touch),
            ]
        ) == [2, 1, 1, 1, 0, 2, 0, 0]


async def test_version_guard_and_version_write() -> None:
    storage = InMemoryStorage()
    await insert(storage, record("a", version=1))
    async with storage.transaction() as tx:
        counts = await tx.update_task_executions_each(
            [
                (
                    WhereByExecutionIds(["a"], version=0),
                    TaskExecutionUpdate(updated_at=T0, status="running", version=1),
                ),
                (
                    WhereByExecutionIds(["a"], version=1, statuses=["ready"]),
                    TaskExecutionUpdate(updated_at=T0, status="running", version=2),
                ),
                # Sees the write before it: version 1 is gone.
                (
                    WhereByExecutionIds(["a"], version=1),
                    TaskExecutionUpdate(updated_at=T0, status="failed", version=2),
                ),
            ]
        )
    assert counts == [0, 1, 0]
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
    count = await update(
        storage,
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
    changed = await update(
        storage,
        WhereByExecutionIds(["a"], statuses=["running"]),
        TaskExecutionUpdate(updated_at=T0, status="failed"),
    )
    assert changed == 0
    assert storage.snapshot() == before


async def test_index_follows_status_changes() -> None:
    storage = InMemoryStorage()
    await insert(storage, record("a"), record("b"), record("c"))
    await update(
        storage,
        WhereByExecutionIds(["a"]),
        TaskExecutionUpdate(updated_at=T0, status="completed", is_closed=True),
    )
    await update(
        storage,
        WhereByExecutionIds(["c"]),
        TaskExecutionUpdate(updated_at=T0, status="failed"),
    )
    assert await unclosed_ids(storage) == ["c"]
    async with storage.transaction() as tx:
        assert await tx.close_task_executions(["c"], now=T0) == 1
    assert await unclosed_ids(storage) == []
    assert await claimed_ids(storage) == ["b"]
    assert await expired_ids(storage, LATER + timedelta(days=1)) == ["b"]


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
