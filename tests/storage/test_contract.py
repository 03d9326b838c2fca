"""The storage contract (storage/types.py), checked on every backend: memory, SQLite, PostgreSQL.

The same test runs unchanged on each (the ``storage`` fixture is parametrized), so a backend that
deviates from the others in round trips, reads by id, partial updates, the guards of an update,
rollback or duplicate handling fails here by name. The operations named for a purpose (expired
leases, closing, cancelling) are in test_purpose_contract.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC

import pytest
from tests._stored import all_ids as stored_ids
from tests._stored import all_records

from durable_execution.model import ALL_STATUSES, ExecutionErrorInfo, RetryOptions, TaskRef
from durable_execution.storage import (
    DuplicateExecutionIdError,
    DurableStorage,
    TaskExecutionUpdate,
    WhereByExecutionIds,
)

from ._records import ERROR, T0, all_ids, at, full_record, ids, insert, read, record, update_one

# --- round trips ----------------------------------------------------------------------------


async def test_a_minimal_record_round_trips_with_absent_fields_absent(
    storage: DurableStorage,
) -> None:
    minimal = record("te_min")
    await insert(storage, minimal)
    assert await read(storage, "te_min") == minimal


async def test_a_fully_populated_record_round_trips(storage: DurableStorage) -> None:
    full = full_record("te_full")
    await insert(storage, full)
    back = await read(storage, "te_full")
    assert back == full
    assert back is not None
    assert back.start_at == at(1)  # the +02:00 input is the same instant


async def test_empty_collections_are_not_absent(storage: DurableStorage) -> None:
    empty = record("te_empty", children_tasks=(), children_tasks_errors=())
    await insert(storage, empty)
    back = await read(storage, "te_empty")
    assert back is not None
    assert back.children_tasks == ()
    assert back.children_tasks_errors == ()


async def test_retry_options_without_max_delay_round_trip(storage: DurableStorage) -> None:
    options = RetryOptions(max_attempts=5, base_delay_ms=0, delay_multiplier=2.0)
    await insert(storage, record("te_retry", retry_options=options))
    back = await read(storage, "te_retry")
    assert back is not None
    assert back.retry_options == options
    assert back.retry_options.max_delay_ms is None


async def test_millisecond_timestamps_round_trip_exactly(storage: DurableStorage) -> None:
    moments = [at(0), at(1), at(999), T0.replace(microsecond=1_000), T0.replace(microsecond=0)]
    for n, moment in enumerate(moments):
        await insert(storage, record(f"te_{n}", start_at=moment, expires_at=moment))
    for n, moment in enumerate(moments):
        back = await read(storage, f"te_{n}")
        assert back is not None
        assert (back.start_at, back.expires_at) == (moment, moment)


# --- reads by id and the guards of an update ------------------------------------------------


async def test_reads_by_id_return_insertion_order_and_ignore_unknown_ids(
    storage: DurableStorage,
) -> None:
    await insert(storage, record("te_a"), record("te_b"), record("te_c"))
    assert await ids(storage, ["te_c", "te_missing", "te_a", "te_c"]) == ["te_a", "te_c"]
    assert await ids(storage, []) == []


async def test_the_guards_of_an_update(storage: DurableStorage) -> None:
    """``WhereByExecutionIds`` is the guard of the one guarded write: each guard given must match
    (``False`` is a value, not "no guard"); the rows it matched are the rows it changed."""
    await insert(
        storage,
        record("te_ready"),
        record("te_running", status="running", needs_promise_cancellation=True, version=3),
        record("te_done", status="completed", version=3),
    )
    every = ["te_ready", "te_running", "te_done"]

    async def matched(**guards: object) -> list[str]:
        """The rows an update with these guards changes (in a transaction rolled back)."""
        found: list[str] = []

        async def update_then_roll_back() -> None:
            async with storage.transaction() as tx:
                where = WhereByExecutionIds(every, **guards)  # type: ignore[arg-type]
                count = await update_one(tx, where, TaskExecutionUpdate(updated_at=at(77)))
                rows = await tx.get_task_executions(every)
                found.extend(r.execution_id for r in rows if r.updated_at == at(77))
                assert count == len(found)
                raise _Boom

        with pytest.raises(_Boom):
            await update_then_roll_back()
        return found

    assert await matched() == every
    assert await matched(statuses=["running", "completed"]) == ["te_running", "te_done"]
    assert await matched(statuses=[]) == []
    assert await matched(needs_promise_cancellation=True) == ["te_running"]
    # False is a guard too, not "no guard".
    assert await matched(needs_promise_cancellation=False) == ["te_ready", "te_done"]
    assert await matched(version=3) == ["te_running", "te_done"]
    assert await matched(version=0) == ["te_ready"]
    assert await matched(version=3, statuses=["completed"]) == ["te_done"]
    assert await matched(version=3, needs_promise_cancellation=True, statuses=["running"]) == [
        "te_running"
    ]
    assert await matched(version=4) == []
    assert [r.updated_at for r in await all_records(storage)] == [at(0)] * 3  # all rolled back


# --- updates --------------------------------------------------------------------------------


async def test_update_writes_every_field(storage: DurableStorage) -> None:
    await insert(storage, record("te_x"), record("te_other"))
    update = TaskExecutionUpdate(
        updated_at=at(50),
        run_output='"ran"',
        output='"out"',
        children_tasks_completed_count=2,
        children_tasks=(TaskRef(task_id="c", execution_id="te_c"),),
        children_tasks_errors=full_record("x").children_tasks_errors,
        finalize_task=TaskRef(task_id="f", execution_id="te_f"),
        finalize_task_error=ERROR,
        error=ExecutionErrorInfo(error_type="timed_out", message="late", is_retryable=True),
        status="running",
        is_closed=True,
        needs_promise_cancellation=True,
        retry_attempts=3,
        start_at=at(40),
        started_at=at(41),
        finished_at=at(42),
        expires_at=at(43),
        version=9,
    )
    async with storage.transaction() as tx:
        assert await update_one(tx, WhereByExecutionIds(["te_x"]), update) == 1
    expected = replace(
        record("te_x"),
        updated_at=at(50),
        run_output='"ran"',
        output='"out"',
        children_tasks_completed_count=2,
        children_tasks=update.children_tasks,
        children_tasks_errors=update.children_tasks_errors,
        finalize_task=update.finalize_task,
        finalize_task_error=ERROR,
        error=update.error,
        status="running",
        is_closed=True,
        needs_promise_cancellation=True,
        retry_attempts=3,
        start_at=at(40),
        started_at=at(41),
        finished_at=at(42),
        expires_at=at(43),
        version=9,
    )
    assert await read(storage, "te_x") == expected
    assert await read(storage, "te_other") == record("te_other")  # untouched


async def test_update_leaves_none_fields_unchanged(storage: DurableStorage) -> None:
    full = full_record("te_full")
    await insert(storage, full)
    async with storage.transaction() as tx:
        count = await update_one(
            tx, WhereByExecutionIds(["te_full"]), TaskExecutionUpdate(updated_at=at(99))
        )
    assert count == 1
    assert await read(storage, "te_full") == replace(full, updated_at=at(99))


async def test_unset_flags_clear_and_win_over_new_values(storage: DurableStorage) -> None:
    await insert(storage, record("te_a", error=ERROR, expires_at=at(5)))
    async with storage.transaction() as tx:
        await update_one(
            tx,
            WhereByExecutionIds(["te_a"]),
            TaskExecutionUpdate(
                updated_at=at(1),
                error=ExecutionErrorInfo(error_type="generic", message="new", is_retryable=False),
                unset_error=True,
                expires_at=at(9),
                unset_expires_at=True,
            ),
        )
    back = await read(storage, "te_a")
    assert back is not None
    assert (back.error, back.expires_at) == (None, None)
    # Clearing what is already clear is harmless; unset_*=False leaves values alone.
    await insert(storage, record("te_b", error=ERROR, expires_at=at(5)))
    async with storage.transaction() as tx:
        await update_one(tx, WhereByExecutionIds(["te_b"]), TaskExecutionUpdate(updated_at=at(1)))
    back = await read(storage, "te_b")
    assert back is not None
    assert (back.error, back.expires_at) == (ERROR, at(5))


async def test_version_guard(storage: DurableStorage) -> None:
    await insert(storage, record("te_v", version=4))
    stale = TaskExecutionUpdate(updated_at=at(1), status="running", version=5)
    async with storage.transaction() as tx:
        assert await update_one(tx, WhereByExecutionIds(["te_v"], version=3), stale) == 0
    assert await read(storage, "te_v") == record("te_v", version=4)
    async with storage.transaction() as tx:
        assert await update_one(tx, WhereByExecutionIds(["te_v"], version=4), stale) == 1
    back = await read(storage, "te_v")
    assert back is not None
    assert (back.status, back.version) == ("running", 5)
    # The old version no longer matches.
    async with storage.transaction() as tx:
        assert await update_one(tx, WhereByExecutionIds(["te_v"], version=4), stale) == 0


async def test_update_by_ids_counts_the_rows_its_filters_match(storage: DurableStorage) -> None:
    await insert(
        storage,
        record("te_r1", start_at=at(1)),
        record("te_r2", start_at=at(2)),
        record("te_run", status="running", expires_at=at(3)),
        record("te_done", status="completed"),
    )
    touch = TaskExecutionUpdate(updated_at=at(60), retry_attempts=1)
    async with storage.transaction() as tx:
        ready_only = WhereByExecutionIds(["te_r1", "te_run"], statuses=["ready"])
        assert await update_one(tx, ready_only, touch) == 1
        running_only = WhereByExecutionIds(["te_run", "te_r2"], statuses=["running"])
        assert await update_one(tx, running_only, touch) == 1
        two = WhereByExecutionIds(["te_r2", "te_done", "te_run"], statuses=["completed", "ready"])
        assert await update_one(tx, two, touch) == 2
        assert await update_one(tx, WhereByExecutionIds([]), touch) == 0
        assert await update_one(tx, WhereByExecutionIds(["te_r1"], statuses=[]), touch) == 0
    attempts = {}
    for execution_id in ("te_r1", "te_r2", "te_run", "te_done"):
        back = await read(storage, execution_id)
        assert back is not None
        attempts[execution_id] = back.retry_attempts
    assert attempts == {"te_r1": 1, "te_r2": 1, "te_run": 1, "te_done": 1}


async def test_status_changes_move_rows_between_statuses(storage: DurableStorage) -> None:
    await insert(storage, record("te_a"), record("te_b"))
    async with storage.transaction() as tx:
        await update_one(
            tx,
            WhereByExecutionIds(["te_a"]),
            TaskExecutionUpdate(updated_at=at(1), status="running"),
        )
        # A transaction sees its own writes.
        assert [r.status for r in await tx.get_task_executions(["te_a", "te_b"])] == [
            "running",
            "ready",
        ]
    assert await stored_ids(storage, ["ready"]) == ["te_b"]
    assert await stored_ids(storage, ["running"]) == ["te_a"]


# --- transactions, rollback and duplicates ----------------------------------------------------


class _Boom(Exception):
    pass


async def test_rollback_leaves_nothing_behind(storage: DurableStorage) -> None:
    await insert(storage, record("te_kept"))

    async def write_then_fail() -> None:
        async with storage.transaction() as tx:
            await tx.insert_task_executions([record("te_new")])
            await update_one(
                tx,
                WhereByExecutionIds(["te_kept"]),
                TaskExecutionUpdate(updated_at=at(1), status="cancelled", error=ERROR),
            )
            raise _Boom

    with pytest.raises(_Boom):
        await write_then_fail()
    assert await all_ids(storage) == ["te_kept"]
    assert await read(storage, "te_kept") == record("te_kept")


async def test_a_cancelled_transaction_rolls_back(storage: DurableStorage) -> None:
    inside = asyncio.Event()

    async def slow_writer() -> None:
        async with storage.transaction() as tx:
            await tx.insert_task_executions([record("te_cancelled")])
            inside.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(slow_writer())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await all_ids(storage) == []
    await insert(storage, record("te_after"))  # the storage is still usable
    assert await all_ids(storage) == ["te_after"]


async def test_duplicate_execution_id_is_rejected_and_nothing_is_stored(
    storage: DurableStorage,
) -> None:
    await insert(storage, record("te_dup"))
    with pytest.raises(DuplicateExecutionIdError, match="te_dup") as raised:
        async with storage.transaction() as tx:
            await tx.insert_task_executions([record("te_fresh"), record("te_dup", task_id="x")])
    assert raised.value.execution_ids == ["te_dup"]
    assert await all_ids(storage) == ["te_dup"]
    assert await read(storage, "te_dup") == record("te_dup")


async def test_duplicates_within_one_batch_are_rejected(storage: DurableStorage) -> None:
    with pytest.raises(DuplicateExecutionIdError, match="te_twice") as raised:
        async with storage.transaction() as tx:
            await tx.insert_task_executions([record("te_twice"), record("te_twice")])
    assert raised.value.execution_ids == ["te_twice"]
    assert await all_ids(storage) == []


async def test_empty_insert_is_a_no_op(storage: DurableStorage) -> None:
    async with storage.transaction() as tx:
        await tx.insert_task_executions([])
    assert await all_ids(storage) == []


async def test_a_batch_insert_stores_every_record_in_order(storage: DurableStorage) -> None:
    batch = [record(f"te_{n:03}", offset_ms=-n) for n in range(250)]
    await insert(storage, *batch)
    listed = [r.execution_id for r in batch]
    assert await ids(storage, list(reversed(listed))) == listed


async def test_concurrent_guarded_increments_lose_nothing(storage: DurableStorage) -> None:
    """Many transactions at once read-modify-write one row under the version guard.

    Every backend must let them all finish (queued or parallel) and the guard must make each
    increment count exactly once: the optimistic-locking pattern the executor relies on.
    """
    await insert(storage, record("te_counter"))
    workers = 20

    async def increment() -> None:
        while True:
            async with storage.transaction() as tx:
                (row,) = await tx.get_task_executions(["te_counter"])
                updated = await update_one(
                    tx,
                    WhereByExecutionIds(["te_counter"], version=row.version),
                    TaskExecutionUpdate(
                        updated_at=at(1),
                        children_tasks_completed_count=row.children_tasks_completed_count + 1,
                        version=row.version + 1,
                    ),
                )
            if updated:
                return
            await asyncio.sleep(0)

    await asyncio.gather(*(increment() for _ in range(workers)))
    back = await read(storage, "te_counter")
    assert back is not None
    assert (back.children_tasks_completed_count, back.version) == (workers, workers)


async def test_every_status_is_stored_and_found(storage: DurableStorage) -> None:
    await insert(storage, *(record(f"te_{s}", status=s) for s in ALL_STATUSES))
    for status in ALL_STATUSES:
        assert await stored_ids(storage, [status]) == [f"te_{status}"]
        assert await ids(storage, [f"te_{status}"]) == [f"te_{status}"]


async def test_naive_timestamps_are_refused_by_sql_backends(sql_storage: DurableStorage) -> None:
    naive = T0.replace(tzinfo=None)
    async with sql_storage.transaction() as tx:
        with pytest.raises(ValueError, match="naive"):
            await tx.insert_task_executions([record("te_naive", start_at=naive)])
    assert await all_ids(sql_storage) == []


async def test_sql_backends_truncate_to_milliseconds(sql_storage: DurableStorage) -> None:
    precise = T0.replace(microsecond=123_456)
    await insert(sql_storage, record("te_us", start_at=precise, created_at=precise))
    back = await read(sql_storage, "te_us")
    assert back is not None
    assert back.start_at == T0.replace(microsecond=123_000, tzinfo=UTC)
    assert back.created_at == back.start_at


async def test_sql_backends_read_timestamps_back_in_utc(sql_storage: DurableStorage) -> None:
    await insert(sql_storage, full_record("te_full"))  # its start_at has a +02:00 offset
    back = await read(sql_storage, "te_full")
    assert back is not None
    for moment in (back.start_at, back.created_at, back.updated_at, back.started_at):
        assert moment is not None
        assert moment.tzinfo is UTC, f"{moment!r} is not UTC"
