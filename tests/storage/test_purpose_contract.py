"""The storage operations named for a purpose (storage/types.py: ``DurableStorageTx``), on every
backend: memory, SQLite and PostgreSQL.

Each one is checked for what it returns, its order, its limit, what it writes and what it leaves
alone (rows of another status, closed rows, rows not asked for). The locking reads are checked on
PostgreSQL with two transactions: the second skips the rows the first holds, without waiting
(SQLite serialises write transactions and memory runs one at a time: nothing to skip there).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import TypeVar

import pytest

from durable_execution.model import (
    ACTIVE_STATUSES,
    ALL_STATUSES,
    FINISHED_STATUSES,
    ExecutionErrorInfo,
)
from durable_execution.storage import (
    DurableStorage,
    DurableStorageTx,
    StorageError,
    TaskExecutionCancel,
    TaskExecutionRecord,
    open_storage,
)

from ._records import at, insert, read, record

T = TypeVar("T")

CANCELLED = ExecutionErrorInfo(error_type="cancelled", message="Task cancelled", is_retryable=False)
UNREADABLE = ExecutionErrorInfo(
    error_type="generic", message="Stored execution te_x has a malformed error", is_retryable=False
)


async def in_tx(storage: DurableStorage, work: Callable[[DurableStorageTx], Awaitable[T]]) -> T:
    async with storage.transaction() as tx:
        return await work(tx)


async def rows_by_id(
    storage: DurableStorage, rows: Sequence[TaskExecutionRecord]
) -> dict[str, TaskExecutionRecord]:
    """The stored form of ``rows`` now, by id."""
    back = await in_tx(storage, lambda tx: tx.get_task_executions([r.execution_id for r in rows]))
    return {r.execution_id: r for r in back}


def ids_of(records: Sequence[TaskExecutionRecord]) -> list[str]:
    return [r.execution_id for r in records]


# --- get_task_executions --------------------------------------------------------------------


async def test_get_task_executions_returns_whole_rows_in_insertion_order(
    storage: DurableStorage,
) -> None:
    # Inserted in an order that is neither sorted by id nor by time.
    rows = [
        record("te_m", offset_ms=5),
        record("te_z", status="completed", is_closed=True, offset_ms=1),
        record("te_a", status="running", version=2, expires_at=at(9), offset_ms=3),
    ]
    await insert(storage, *rows)
    asked = ["te_a", "te_unknown", "te_z", "te_m", "te_a"]
    assert await in_tx(storage, lambda tx: tx.get_task_executions(asked)) == rows
    assert await in_tx(storage, lambda tx: tx.get_task_executions(["te_z"])) == [rows[1]]
    assert await in_tx(storage, lambda tx: tx.get_task_executions(["te_unknown"])) == []
    assert await in_tx(storage, lambda tx: tx.get_task_executions([])) == []


# --- get_finished_task_execution_ids --------------------------------------------------------


async def test_get_finished_task_execution_ids_keeps_the_finished_in_insertion_order(
    storage: DurableStorage,
) -> None:
    # Every status, finished ones closed or not, inserted in reverse name order.
    rows = [
        record(f"te_{n:02}_{status}", status=status, is_closed=n % 2 == 0)
        for n, status in reversed(list(enumerate(ALL_STATUSES)))
    ]
    await insert(storage, *rows)
    finished = [r.execution_id for r in rows if r.status in FINISHED_STATUSES]
    assert len(finished) == len(FINISHED_STATUSES)
    asked = [*sorted(r.execution_id for r in rows), "te_unknown", rows[0].execution_id]

    async def finished_ids(ids: Sequence[str]) -> list[str]:
        return await in_tx(storage, lambda tx: tx.get_finished_task_execution_ids(ids))

    assert await finished_ids(asked) == finished
    # Only those asked for.
    assert await finished_ids(finished[1:2]) == finished[1:2]
    active = [r.execution_id for r in rows if r.status in ACTIVE_STATUSES]
    assert await finished_ids(active) == []
    assert await finished_ids([]) == []


# --- get_expired_task_executions ------------------------------------------------------------

EXPIRED_ROWS = [
    record("te_late", status="running", updated_at=at(30), expires_at=at(10)),
    record("te_early", status="running", updated_at=at(10), expires_at=at(19)),
    record("te_tie", status="running", updated_at=at(10), expires_at=at(5)),  # tie: insertion
    # Not expired: expires_at == now is not before it; no lease at all never expires.
    record("te_at_now", status="running", updated_at=at(0), expires_at=at(20)),
    record("te_no_lease", status="running", updated_at=at(0)),
    # Expired, but closed, or not running.
    record("te_closed", status="running", is_closed=True, updated_at=at(0), expires_at=at(1)),
    record("te_ready", status="ready", updated_at=at(0), expires_at=at(1)),
    record("te_waiting", status="waiting_for_children_tasks", updated_at=at(0), expires_at=at(1)),
    record("te_done", status="completed", updated_at=at(0), expires_at=at(1)),
]


async def expired(storage: DurableStorage, now_ms: int = 20, limit: int = 100) -> list[str]:
    found = await in_tx(
        storage, lambda tx: tx.get_expired_task_executions(now=at(now_ms), limit=limit)
    )
    return ids_of(found)


async def test_get_expired_returns_running_unclosed_rows_whose_lease_ended_oldest_first(
    storage: DurableStorage,
) -> None:
    await insert(storage, *EXPIRED_ROWS)
    found = await in_tx(storage, lambda tx: tx.get_expired_task_executions(now=at(20), limit=100))
    # Oldest updated_at first, ties by insertion; whole rows as stored.
    assert found == [EXPIRED_ROWS[1], EXPIRED_ROWS[2], EXPIRED_ROWS[0]]
    assert await expired(storage, now_ms=21) == ["te_at_now", "te_early", "te_tie", "te_late"]
    assert await expired(storage, now_ms=10) == ["te_tie"]  # strictly before now
    assert await expired(storage, now_ms=5) == []
    # A read: nothing changed.
    assert await rows_by_id(storage, EXPIRED_ROWS) == {r.execution_id: r for r in EXPIRED_ROWS}


@pytest.mark.parametrize(("limit", "expected"), [(1, 1), (2, 2), (3, 3), (10, 3)])
async def test_get_expired_takes_the_first_rows_up_to_its_limit(
    storage: DurableStorage, limit: int, expected: int
) -> None:
    await insert(storage, *EXPIRED_ROWS)
    assert await expired(storage, limit=limit) == ["te_early", "te_tie", "te_late"][:expected]


async def test_get_expired_compares_a_sub_millisecond_now_like_python(
    storage: DurableStorage,
) -> None:
    await insert(storage, record("te_a", status="running", expires_at=at(5)))
    just_after = at(5) + timedelta(microseconds=1)
    found = await in_tx(storage, lambda tx: tx.get_expired_task_executions(now=just_after, limit=1))
    assert ids_of(found) == ["te_a"]
    assert await expired(storage, now_ms=5) == []


# --- get_finished_unclosed_task_executions (and its ids) ------------------------------------

UNCLOSED_ROWS = [
    record("te_late", status="completed", updated_at=at(30)),
    record("te_early", status="failed", updated_at=at(10)),
    record("te_tie", status="cancelled", updated_at=at(10)),  # tie: insertion
    record("te_timed_out", status="timed_out", updated_at=at(20)),
    record("te_children", status="children_tasks_failed", updated_at=at(21)),
    record("te_finalize", status="finalize_task_failed", updated_at=at(22)),
    # Closed already, or not finished.
    record("te_closed", status="completed", is_closed=True, updated_at=at(0)),
    *(record(f"te_{s}", status=s, updated_at=at(0)) for s in ACTIVE_STATUSES),
]
UNCLOSED_ORDER = ["te_early", "te_tie", "te_timed_out", "te_children", "te_finalize", "te_late"]


async def unclosed(
    storage: DurableStorage, limit: int = 100, execution_ids: Sequence[str] | None = None
) -> list[str]:
    """The ids of the locking read, checked against those of the ids-only read."""

    async def both(tx: DurableStorageTx) -> list[str]:
        found = await tx.get_finished_unclosed_task_executions(
            limit=limit, execution_ids=execution_ids
        )
        if execution_ids is None:
            assert await tx.get_finished_unclosed_task_execution_ids(limit=limit) == ids_of(found)
        return ids_of(found)

    return await in_tx(storage, both)


async def test_get_finished_unclosed_returns_every_finished_status_oldest_first(
    storage: DurableStorage,
) -> None:
    await insert(storage, *UNCLOSED_ROWS)
    found = await in_tx(storage, lambda tx: tx.get_finished_unclosed_task_executions(limit=100))
    by_id = {r.execution_id: r for r in UNCLOSED_ROWS}
    assert found == [by_id[execution_id] for execution_id in UNCLOSED_ORDER]
    assert await unclosed(storage) == UNCLOSED_ORDER
    assert await rows_by_id(storage, UNCLOSED_ROWS) == by_id  # a read: nothing changed


@pytest.mark.parametrize("limit", [1, 2, 5, 6, 50])
async def test_get_finished_unclosed_takes_the_first_rows_up_to_its_limit(
    storage: DurableStorage, limit: int
) -> None:
    await insert(storage, *UNCLOSED_ROWS)
    assert await unclosed(storage, limit=limit) == UNCLOSED_ORDER[:limit]


async def test_get_finished_unclosed_of_given_ids_keeps_only_those(
    storage: DurableStorage,
) -> None:
    await insert(storage, *UNCLOSED_ROWS)
    asked = ["te_late", "te_closed", "te_ready", "te_unknown", "te_tie", "te_late"]
    assert await unclosed(storage, execution_ids=asked) == ["te_tie", "te_late"]
    assert await unclosed(storage, execution_ids=asked, limit=1) == ["te_tie"]
    assert await unclosed(storage, execution_ids=["te_running", "te_closed"]) == []
    assert await unclosed(storage, execution_ids=[]) == []


# --- close_task_executions and postpone_closing_task_executions -----------------------------


async def test_close_marks_the_rows_closed_and_touches_nothing_else(
    storage: DurableStorage,
) -> None:
    await insert(storage, *UNCLOSED_ROWS)
    closed = ["te_tie", "te_late", "te_unknown"]
    count = await in_tx(storage, lambda tx: tx.close_task_executions(closed, now=at(50)))
    assert count == 2
    after = await rows_by_id(storage, UNCLOSED_ROWS)
    for row in UNCLOSED_ROWS:
        if row.execution_id in closed:
            assert after[row.execution_id] == replace(row, is_closed=True, updated_at=at(50))
        else:
            assert after[row.execution_id] == row
    # The closer's walk no longer finds them.
    assert await unclosed(storage) == [r for r in UNCLOSED_ORDER if r not in closed]
    assert await in_tx(storage, lambda tx: tx.close_task_executions([], now=at(60))) == 0


async def test_postpone_moves_the_rows_to_the_end_of_the_closers_walk(
    storage: DurableStorage,
) -> None:
    await insert(storage, *UNCLOSED_ROWS)
    postponed = ["te_early", "te_tie", "te_unknown"]
    count = await in_tx(
        storage, lambda tx: tx.postpone_closing_task_executions(postponed, now=at(40))
    )
    assert count == 2
    after = await rows_by_id(storage, UNCLOSED_ROWS)
    for row in UNCLOSED_ROWS:
        if row.execution_id in postponed:
            # Only updated_at moves: still finished, still unclosed.
            assert after[row.execution_id] == replace(row, updated_at=at(40))
        else:
            assert after[row.execution_id] == row
    assert await unclosed(storage, limit=1) == ["te_timed_out"]
    assert await unclosed(storage) == [*UNCLOSED_ORDER[2:], "te_early", "te_tie"]
    assert await in_tx(storage, lambda tx: tx.postpone_closing_task_executions([], now=at(60))) == 0


# --- cancel_task_execution ------------------------------------------------------------------


async def test_cancel_one_execution_guarded_by_the_status_and_version_read(
    storage: DurableStorage,
) -> None:
    rows = [
        record("te_running", status="running", version=3, expires_at=at(9), error=None),
        record("te_ready", version=5),
        record("te_other", status="running", version=3),
    ]
    await insert(storage, *rows)

    async def cancel(execution_id: str, status: str, version: int, asks: bool) -> bool:
        return await in_tx(
            storage,
            lambda tx: tx.cancel_task_execution(
                TaskExecutionCancel(
                    execution_id,
                    status=status,  # type: ignore[arg-type]
                    version=version,
                    error=CANCELLED,
                    needs_promise_cancellation=asks,
                    now=at(70),
                )
            ),
        )

    # A stale status, a stale version, an unknown id: nothing matches, nothing changes.
    assert not await cancel("te_running", "ready", 3, True)
    assert not await cancel("te_running", "running", 2, True)
    assert not await cancel("te_unknown", "running", 3, True)
    assert await rows_by_id(storage, rows) == {r.execution_id: r for r in rows}

    assert await cancel("te_running", "running", 3, True)
    assert await cancel("te_ready", "ready", 5, False)
    after = await rows_by_id(storage, rows)

    def cancelled(row: TaskExecutionRecord, asks: bool) -> TaskExecutionRecord:
        return replace(
            row,
            status="cancelled",
            error=CANCELLED,
            needs_promise_cancellation=asks,
            finished_at=at(70),
            updated_at=at(70),
            version=row.version + 1,
        )

    assert after == {
        "te_running": cancelled(rows[0], True),
        "te_ready": cancelled(rows[1], False),
        "te_other": rows[2],
    }
    # The version read before the cancel no longer matches.
    assert not await cancel("te_running", "cancelled", 3, True)
    assert await read(storage, "te_running") == after["te_running"]


# --- cancel_active_task_executions ----------------------------------------------------------

OWN_FAILURE = ExecutionErrorInfo(error_type="generic", message="own failure", is_retryable=True)
# Inserted in an order that is neither sorted by id nor by time; one of each status.
DESCENDANTS = [
    record("te_z_ready", updated_at=at(9)),
    record("te_y_running", status="running", version=2, expires_at=at(8), updated_at=at(1)),
    record("te_x_children", status="waiting_for_children_tasks", version=1, updated_at=at(5)),
    record("te_w_finalize", status="waiting_for_finalize_task", version=4, updated_at=at(0)),
    record("te_v_completed", status="completed", finished_at=at(0)),
    record("te_u_failed", status="failed", error=OWN_FAILURE, finished_at=at(0)),
    record("te_t_cancelled", status="cancelled", is_closed=True, finished_at=at(0)),
    record("te_s_not_asked", status="running"),
]


async def test_cancel_active_cancels_the_active_ones(
    storage: DurableStorage,
) -> None:
    await insert(storage, *DESCENDANTS)
    asked = sorted(r.execution_id for r in DESCENDANTS if r.execution_id != "te_s_not_asked")
    asked.append("te_unknown")
    cancelled = await in_tx(
        storage,
        lambda tx: tx.cancel_active_task_executions(
            asked, error=CANCELLED, now=at(80), running_here={"te_y_running", "te_s_not_asked"}
        ),
    )
    # In any order (the contract): an UPDATE ... RETURNING follows the plan, not the ids.
    assert sorted(cancelled) == sorted(
        ["te_z_ready", "te_y_running", "te_x_children", "te_w_finalize"]
    )
    after = await rows_by_id(storage, DESCENDANTS)
    for row in DESCENDANTS:
        if row.execution_id in cancelled:
            # The version is left as it is; only an attempt running elsewhere is asked to stop.
            assert after[row.execution_id] == replace(
                row,
                status="cancelled",
                error=CANCELLED,
                needs_promise_cancellation=row.execution_id != "te_y_running",
                finished_at=at(80),
                updated_at=at(80),
            )
        else:
            assert after[row.execution_id] == row  # finished, or not asked for
    # Once cancelled, they are not active any more.
    again = await in_tx(
        storage,
        lambda tx: tx.cancel_active_task_executions(
            asked, error=CANCELLED, now=at(90), running_here=()
        ),
    )
    assert again == []
    assert await rows_by_id(storage, DESCENDANTS) == after
    nothing = await in_tx(
        storage,
        lambda tx: tx.cancel_active_task_executions(
            [], error=CANCELLED, now=at(90), running_here=()
        ),
    )
    assert nothing == []


# --- take_cancellation_requests -------------------------------------------------------------

REQUESTS = [
    record("te_z", status="running", needs_promise_cancellation=True, version=2, expires_at=at(9)),
    record("te_y", status="running"),  # not asked to stop
    record("te_x", status="cancelled", needs_promise_cancellation=True),
    record("te_w", status="running", needs_promise_cancellation=True),
    record("te_v", status="running", needs_promise_cancellation=True),  # not running here
]
RUNNING_HERE = ["te_w", "te_x", "te_y", "te_z", "te_unknown"]


async def take(storage: DurableStorage, limit: int = 100, now_ms: int = 60) -> list[str]:
    """The ids taken, in insertion order (the operation returns them in any order)."""
    taken = await in_tx(
        storage,
        lambda tx: tx.take_cancellation_requests(RUNNING_HERE, now=at(now_ms), limit=limit),
    )
    return [r.execution_id for r in REQUESTS if r.execution_id in taken]


async def test_take_cancellation_requests_clears_the_flags_it_takes(
    storage: DurableStorage,
) -> None:
    await insert(storage, *REQUESTS)
    assert await take(storage) == ["te_z", "te_x", "te_w"]
    after = await rows_by_id(storage, REQUESTS)
    for row in REQUESTS:
        if row.execution_id in ("te_z", "te_x", "te_w"):
            assert after[row.execution_id] == replace(
                row, needs_promise_cancellation=False, updated_at=at(60)
            )
        else:
            assert after[row.execution_id] == row  # not flagged, or not among the ids
    assert await take(storage) == []  # taken once
    assert (
        await in_tx(storage, lambda tx: tx.take_cancellation_requests([], now=at(61), limit=5))
        == []
    )


async def test_take_cancellation_requests_takes_up_to_its_limit(storage: DurableStorage) -> None:
    await insert(storage, *REQUESTS)
    assert await take(storage, limit=2) == ["te_z", "te_x"]
    still = await read(storage, "te_w")
    assert still is not None
    assert still.needs_promise_cancellation  # left for the next call
    assert await take(storage, limit=2) == ["te_w"]
    assert await take(storage, limit=2) == []


# --- fail_unreadable_task_execution ---------------------------------------------------------


@pytest.mark.parametrize("status", ACTIVE_STATUSES)
async def test_fail_unreadable_fails_an_active_row(storage: DurableStorage, status: str) -> None:
    row = record(
        "te_x",
        status=status,  # type: ignore[arg-type]
        error=ExecutionErrorInfo("generic", "the stored error", True),
        started_at=at(1),
        expires_at=at(9),
        version=3,
    )
    await insert(storage, row, record("te_other", status="running", expires_at=at(9)))
    failed = await in_tx(
        storage, lambda tx: tx.fail_unreadable_task_execution("te_x", error=UNREADABLE, now=at(70))
    )
    assert failed
    assert await read(storage, "te_x") == replace(
        row,
        status="failed",
        error=UNREADABLE,
        started_at=at(70),
        finished_at=at(70),
        updated_at=at(70),
        expires_at=None,
    )
    assert await read(storage, "te_other") == record("te_other", status="running", expires_at=at(9))


async def test_fail_unreadable_leaves_finished_and_unknown_rows_alone(
    storage: DurableStorage,
) -> None:
    rows = [record(f"te_{s}", status=s, finished_at=at(2)) for s in FINISHED_STATUSES]
    await insert(storage, *rows)
    for row in rows:
        failed = await in_tx(
            storage,
            lambda tx, row=row: tx.fail_unreadable_task_execution(  # type: ignore[misc]
                row.execution_id, error=UNREADABLE, now=at(70)
            ),
        )
        assert not failed
    assert not await in_tx(
        storage,
        lambda tx: tx.fail_unreadable_task_execution("te_unknown", error=UNREADABLE, now=at(70)),
    )
    assert await rows_by_id(storage, rows) == {r.execution_id: r for r in rows}


# --- limits ---------------------------------------------------------------------------------


LIMITED: list[tuple[str, Callable[[DurableStorageTx, int], Awaitable[object]]]] = [
    ("expired", lambda tx, limit: tx.get_expired_task_executions(now=at(20), limit=limit)),
    ("unclosed", lambda tx, limit: tx.get_finished_unclosed_task_executions(limit=limit)),
    ("unclosed_ids", lambda tx, limit: tx.get_finished_unclosed_task_execution_ids(limit=limit)),
    (
        "take_requests",
        lambda tx, limit: tx.take_cancellation_requests(RUNNING_HERE, now=at(60), limit=limit),
    ),
]


@pytest.mark.parametrize("operation", [call for _, call in LIMITED], ids=[n for n, _ in LIMITED])
@pytest.mark.parametrize("limit", [0, -1])
async def test_a_limit_below_one_is_refused(
    storage: DurableStorage,
    operation: Callable[[DurableStorageTx, int], Awaitable[object]],
    limit: int,
) -> None:
    # A row each operation would return: te_z is running with an expired lease and flagged.
    await insert(storage, REQUESTS[0], record("te_finished", status="completed"))
    async with storage.transaction() as tx:
        with pytest.raises(StorageError, match="limit"):
            await operation(tx, limit)


# --- PostgreSQL: the locking reads skip rows that another transaction holds -----------------


async def _second_skips_what_the_first_holds(
    postgres_url: str,
    rows: Sequence[TaskExecutionRecord],
    operation: Callable[[DurableStorageTx, int], Awaitable[list[str]]],
) -> tuple[list[str], list[str], list[str]]:
    """Run ``operation(tx, 2)`` in a transaction kept open, then ``operation(tx, 100)`` in a
    second one; then the same again once the first ended. The three results."""
    async with open_storage(postgres_url, pool_max_size=4) as storage:
        await insert(storage, *rows)
        holding = asyncio.Event()
        release = asyncio.Event()

        async def first() -> list[str]:
            async with storage.transaction() as tx:
                got = await operation(tx, 2)
                holding.set()
                await release.wait()  # keep the row locks while the second runs
                raise _Rollback(got)

        holder = asyncio.create_task(first())
        await holding.wait()
        second = await asyncio.wait_for(in_tx(storage, lambda tx: operation(tx, 100)), timeout=5)
        release.set()
        with pytest.raises(_Rollback) as rolled_back:
            await holder
        held: list[str] = rolled_back.value.args[0]
        # Rolled back: what the second could not take (or took and rolled back) is there again.
        after = await in_tx(storage, lambda tx: operation(tx, 100))
    return held, second, after


class _Rollback(Exception):
    pass


async def test_postgres_get_expired_skips_rows_another_transaction_holds(
    postgres_url: str,
) -> None:
    async def operation(tx: DurableStorageTx, limit: int) -> list[str]:
        return ids_of(await tx.get_expired_task_executions(now=at(20), limit=limit))

    held, second, after = await _second_skips_what_the_first_holds(
        postgres_url, EXPIRED_ROWS, operation
    )
    assert held == ["te_early", "te_tie"]
    assert second == ["te_late"]
    assert after == ["te_early", "te_tie", "te_late"]


async def test_postgres_get_finished_unclosed_skips_rows_another_transaction_holds(
    postgres_url: str,
) -> None:
    async def operation(tx: DurableStorageTx, limit: int) -> list[str]:
        return ids_of(await tx.get_finished_unclosed_task_executions(limit=limit))

    held, second, after = await _second_skips_what_the_first_holds(
        postgres_url, UNCLOSED_ROWS, operation
    )
    assert held == UNCLOSED_ORDER[:2]
    assert second == UNCLOSED_ORDER[2:]
    assert after == UNCLOSED_ORDER


async def test_postgres_get_finished_unclosed_of_given_ids_skips_held_rows_too(
    postgres_url: str,
) -> None:
    asked = ["te_tie", "te_early", "te_late"]

    async def operation(tx: DurableStorageTx, limit: int) -> list[str]:
        found = await tx.get_finished_unclosed_task_executions(limit=limit, execution_ids=asked)
        return ids_of(found)

    held, second, after = await _second_skips_what_the_first_holds(
        postgres_url, UNCLOSED_ROWS, operation
    )
    assert held == ["te_early", "te_tie"]
    assert second == ["te_late"]
    assert after == ["te_early", "te_tie", "te_late"]


async def test_postgres_the_unclosed_ids_read_neither_locks_nor_waits(postgres_url: str) -> None:
    async with open_storage(postgres_url, pool_max_size=4) as storage:
        await insert(storage, *UNCLOSED_ROWS)
        async with storage.transaction() as holder:
            held = await holder.get_finished_unclosed_task_executions(limit=2)
            assert ids_of(held) == UNCLOSED_ORDER[:2]
            # Another transaction reads the ids without waiting for the held rows...
            found = await asyncio.wait_for(
                in_tx(storage, lambda tx: tx.get_finished_unclosed_task_execution_ids(limit=100)),
                timeout=5,
            )
            assert found == UNCLOSED_ORDER
        async with storage.transaction() as reader:
            ids = await reader.get_finished_unclosed_task_execution_ids(limit=100)
            assert ids == UNCLOSED_ORDER
            # ...and reading them locks nothing: the locking read of another takes them all.
            locked = await asyncio.wait_for(
                in_tx(storage, lambda tx: tx.get_finished_unclosed_task_executions(limit=100)),
                timeout=5,
            )
            assert ids_of(locked) == UNCLOSED_ORDER


async def test_postgres_take_cancellation_requests_skips_rows_another_transaction_holds(
    postgres_url: str,
) -> None:
    async def operation(tx: DurableStorageTx, limit: int) -> list[str]:
        taken = await tx.take_cancellation_requests(RUNNING_HERE, now=at(60), limit=limit)
        return [r.execution_id for r in REQUESTS if r.execution_id in taken]

    held, second, after = await _second_skips_what_the_first_holds(
        postgres_url, REQUESTS, operation
    )
    assert held == ["te_z", "te_x"]
    assert second == ["te_w"]
    # The second committed: only what the first took (and rolled back) is asked again.
    assert after == ["te_z", "te_x"]


async def test_postgres_reads_by_id_do_not_wait_for_held_rows(postgres_url: str) -> None:
    async with open_storage(postgres_url, pool_max_size=4) as storage:
        await insert(storage, *EXPIRED_ROWS)
        async with storage.transaction() as holder:
            held = await holder.get_expired_task_executions(now=at(20), limit=100)
            wanted = ids_of(held)
            by_id = await asyncio.wait_for(
                in_tx(storage, lambda tx: tx.get_task_executions(wanted)), timeout=5
            )
            finished = await asyncio.wait_for(
                in_tx(storage, lambda tx: tx.get_finished_task_execution_ids(wanted)), timeout=5
            )
        assert by_id == [r for r in EXPIRED_ROWS if r in held]  # by id: insertion order
        assert len(by_id) == 3
        assert finished == []
