"""The storage contract (storage/types.py), checked on every backend: memory, SQLite, PostgreSQL.

The same test runs unchanged on each (the ``storage`` fixture is parametrized), so a backend that
deviates from the others in filtering, ordering, limits, partial updates, the version guard,
rollback or duplicate handling fails here by name.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, timedelta

import pytest

from durable_execution.model import ALL_STATUSES, ExecutionErrorInfo, RetryOptions, TaskRef
from durable_execution.storage import (
    DuplicateExecutionIdError,
    DurableStorage,
    StorageError,
    TaskExecutionUpdate,
    TaskExecutionWhere,
    WhereByExecutionIds,
    WhereByStatuses,
)

from ._records import ERROR, T0, all_ids, at, full_record, ids, insert, read, record

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


# --- where variants, filters and ordering ---------------------------------------------------


async def test_by_execution_ids_returns_insertion_order_and_ignores_unknown_ids(
    storage: DurableStorage,
) -> None:
    await insert(storage, record("te_a"), record("te_b"), record("te_c"))
    where = WhereByExecutionIds(["te_c", "te_missing", "te_a", "te_c"])
    assert await ids(storage, where) == ["te_a", "te_c"]
    assert await ids(storage, WhereByExecutionIds([])) == []


async def test_by_execution_ids_optional_filters(storage: DurableStorage) -> None:
    await insert(
        storage,
        record("te_ready"),
        record("te_running", status="running", needs_promise_cancellation=True, version=3),
        record("te_done", status="completed", version=3),
    )
    every = ["te_ready", "te_running", "te_done"]

    async def select(**filters: object) -> list[str]:
        return await ids(storage, WhereByExecutionIds(every, **filters))  # type: ignore[arg-type]

    assert await select() == every
    assert await select(statuses=["running", "completed"]) == ["te_running", "te_done"]
    assert await select(statuses=[]) == []
    assert await select(needs_promise_cancellation=True) == ["te_running"]
    # False is a filter too, not "no filter".
    assert await select(needs_promise_cancellation=False) == ["te_ready", "te_done"]
    assert await select(version=3) == ["te_running", "te_done"]
    assert await select(version=0) == ["te_ready"]
    assert await select(version=3, statuses=["completed"]) == ["te_done"]
    assert await select(version=3, needs_promise_cancellation=True, statuses=["running"]) == [
        "te_running"
    ]
    assert await select(version=4) == []


async def test_by_statuses_filters_and_orders_by_updated_at(storage: DurableStorage) -> None:
    await insert(
        storage,
        record("te_late", status="running", updated_at=at(30), expires_at=at(10)),
        record("te_early", status="running", updated_at=at(10), expires_at=at(20)),
        record("te_tie", status="running", updated_at=at(10)),  # no expires_at
        record("te_closed", status="completed", is_closed=True, updated_at=at(0)),
        record("te_open", status="completed", updated_at=at(5)),
    )
    running = WhereByStatuses(["running"])
    assert await ids(storage, running) == ["te_early", "te_tie", "te_late"]  # tie: insertion
    finished = WhereByStatuses(["completed"], is_closed=False)
    assert await ids(storage, finished) == ["te_open"]
    closed = WhereByStatuses(["completed"], is_closed=True)
    assert await ids(storage, closed) == ["te_closed"]
    both = WhereByStatuses(["completed", "running"])
    assert await ids(storage, both) == ["te_closed", "te_open", "te_early", "te_tie", "te_late"]
    # expires_at_less_than is strict and never matches a row without expires_at.
    assert await ids(storage, WhereByStatuses(["running"], expires_at_less_than=at(20))) == [
        "te_late"
    ]
    assert await ids(storage, WhereByStatuses(["running"], expires_at_less_than=at(21))) == [
        "te_early",
        "te_late",
    ]
    assert await ids(
        storage, WhereByStatuses(["running"], is_closed=False, expires_at_less_than=at(11))
    ) == ["te_late"]
    assert await ids(storage, WhereByStatuses([])) == []


async def test_sub_millisecond_bounds_compare_like_python(storage: DurableStorage) -> None:
    await insert(storage, record("te_a", start_at=at(5), expires_at=at(5), status="ready"))
    just_after = at(5) + timedelta(microseconds=1)
    assert await ids(storage, WhereByStatuses(["ready"], expires_at_less_than=just_after)) == [
        "te_a"
    ]


LIMIT_WHERES: list[TaskExecutionWhere] = [
    WhereByExecutionIds(["te_0", "te_1", "te_2", "te_3"]),
    WhereByStatuses(["ready"]),
]


@pytest.mark.parametrize("where", LIMIT_WHERES, ids=lambda w: w.type)
@pytest.mark.parametrize(("limit", "expected"), [(None, 4), (0, 0), (1, 1), (3, 3), (10, 4)])
async def test_limits(
    storage: DurableStorage, where: TaskExecutionWhere, limit: int | None, expected: int
) -> None:
    await insert(storage, *(record(f"te_{n}", offset_ms=n) for n in range(4)))
    found = await ids(storage, where, limit)
    assert found == [f"te_{n}" for n in range(expected)]  # the first ones, in order
    assert await ids(storage, where, limit, skip_locked=True) == found


async def test_negative_limit_is_refused(storage: DurableStorage) -> None:
    async with storage.transaction() as tx:
        with pytest.raises(StorageError, match="limit"):
            await tx.get_task_execution_ids(WhereByStatuses(["ready"]), limit=-1)
        with pytest.raises(StorageError, match="limit"):
            await tx.get_task_executions(WhereByStatuses(["ready"]), limit=-1)


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
        assert await tx.update_task_executions(WhereByExecutionIds(["te_x"]), update) == 1
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
        count = await tx.update_task_executions(
            WhereByExecutionIds(["te_full"]), TaskExecutionUpdate(updated_at=at(99))
        )
    assert count == 1
    assert await read(storage, "te_full") == replace(full, updated_at=at(99))


async def test_unset_flags_clear_and_win_over_new_values(storage: DurableStorage) -> None:
    await insert(storage, record("te_a", error=ERROR, expires_at=at(5)))
    async with storage.transaction() as tx:
        await tx.update_task_executions(
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
        await tx.update_task_executions(
            WhereByExecutionIds(["te_b"]), TaskExecutionUpdate(updated_at=at(1))
        )
    back = await read(storage, "te_b")
    assert back is not None
    assert (back.error, back.expires_at) == (ERROR, at(5))


async def test_version_guard(storage: DurableStorage) -> None:
    await insert(storage, record("te_v", version=4))
    stale = TaskExecutionUpdate(updated_at=at(1), status="running", version=5)
    async with storage.transaction() as tx:
        assert await tx.update_task_executions(WhereByExecutionIds(["te_v"], version=3), stale) == 0
    assert await read(storage, "te_v") == record("te_v", version=4)
    async with storage.transaction() as tx:
        assert await tx.update_task_executions(WhereByExecutionIds(["te_v"], version=4), stale) == 1
    back = await read(storage, "te_v")
    assert back is not None
    assert (back.status, back.version) == ("running", 5)
    # The old version no longer matches.
    async with storage.transaction() as tx:
        assert await tx.update_task_executions(WhereByExecutionIds(["te_v"], version=4), stale) == 0


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
        assert await tx.update_task_executions(ready_only, touch) == 1
        running_only = WhereByExecutionIds(["te_run", "te_r2"], statuses=["running"])
        assert await tx.update_task_executions(running_only, touch) == 1
        two = WhereByExecutionIds(["te_r2", "te_done", "te_run"], statuses=["completed", "ready"])
        assert await tx.update_task_executions(two, touch) == 2
        assert await tx.update_task_executions(WhereByExecutionIds([]), touch) == 0
        assert (
            await tx.update_task_executions(WhereByExecutionIds(["te_r1"], statuses=[]), touch) == 0
        )
    attempts = {}
    for execution_id in ("te_r1", "te_r2", "te_run", "te_done"):
        back = await read(storage, execution_id)
        assert back is not None
        attempts[execution_id] = back.retry_attempts
    assert attempts == {"te_r1": 1, "te_r2": 1, "te_run": 1, "te_done": 1}


async def test_status_changes_move_rows_between_where_results(storage: DurableStorage) -> None:
    await insert(storage, record("te_a"), record("te_b"))
    async with storage.transaction() as tx:
        await tx.update_task_executions(
            WhereByExecutionIds(["te_a"]), TaskExecutionUpdate(updated_at=at(1), status="running")
        )
        # A transaction sees its own writes.
        assert await tx.get_task_execution_ids(WhereByStatuses(["running"])) == ["te_a"]
    assert await ids(storage, WhereByStatuses(["ready"])) == ["te_b"]
    assert await ids(storage, WhereByStatuses(["running"])) == ["te_a"]


# --- transactions, rollback and duplicates ----------------------------------------------------


class _Boom(Exception):
    pass


async def test_rollback_leaves_nothing_behind(storage: DurableStorage) -> None:
    await insert(storage, record("te_kept"))

    async def write_then_fail() -> None:
        async with storage.transaction() as tx:
            await tx.insert_task_executions([record("te_new")])
            await tx.update_task_executions(
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
    assert await ids(storage, WhereByExecutionIds(list(reversed(listed)))) == listed


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
                (row,) = await tx.get_task_executions(WhereByExecutionIds(["te_counter"]))
                updated = await tx.update_task_executions(
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
        assert await ids(storage, WhereByStatuses([status])) == [f"te_{status}"]


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
