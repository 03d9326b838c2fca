"""The schedule methods of the storage contract (storage/types.py), on memory, SQLite, PostgreSQL.

What the executor's exactly-once-per-tick guarantee rests on: the upsert at start keeps a
schedule's next tick unless its timing changed, the advance is a compare-and-set, and the
advance and the tick's execution commit (or roll back) together.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from durable_execution.storage import (
    DurableStorage,
    InspectableSchedulesStorage,
    ScheduleListing,
    ScheduleRecord,
    ScheduleTickAdvance,
)

from ._records import T0, at, insert, read, record


def schedule(schedule_id: str = "nightly", **changes: object) -> ScheduleRecord:
    base = ScheduleRecord(
        schedule_id=schedule_id,
        task_id="report",
        cron="0 3 * * *",
        every_ms=None,
        timezone="Europe/Berlin",
        run_input='{"n":1}',
        next_tick_at=at(1000),
        created_at=at(0),
        updated_at=at(0),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def advance(
    schedule_id: str = "nightly", *, expected: int = 1000, **changes: object
) -> ScheduleTickAdvance:
    base = ScheduleTickAdvance(
        schedule_id=schedule_id,
        expected_next_tick_at=at(expected),
        next_tick_at=at(expected + 1000),
        tick_at=at(expected),
        execution_id="te_tick",
        updated_at=at(expected + 5),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def register(storage: DurableStorage, *schedules: ScheduleRecord) -> None:
    async with storage.transaction() as tx:
        await tx.register_task_schedules(schedules)


async def stored(storage: DurableStorage, *schedule_ids: str) -> list[ScheduleRecord]:
    async with storage.transaction() as tx:
        return await tx.get_task_schedules(schedule_ids)


async def advanced(storage: DurableStorage, tick: ScheduleTickAdvance) -> bool:
    async with storage.transaction() as tx:
        return await tx.advance_task_schedule(tick)


async def test_a_registered_schedule_round_trips_and_reads_are_by_id(
    storage: DurableStorage,
) -> None:
    every = schedule("b-poll", cron=None, every_ms=500, timezone="UTC")
    nightly = schedule()
    await register(storage, every, nightly)
    assert await stored(storage, "nightly", "unknown", "b-poll") == [every, nightly]
    assert await stored(storage) == []


async def test_registering_again_keeps_the_next_tick_unless_the_timing_changed(
    storage: DurableStorage,
) -> None:
    await register(storage, schedule())
    assert await advanced(storage, advance())
    # The same timing, another task and input, a later computed next tick: the stored next
    # tick, the creation time and the last tick stay; the rest is the new definition.
    again = schedule(task_id="report_v2", run_input="2", next_tick_at=at(9000), updated_at=at(7))
    await register(storage, again)
    [row] = await stored(storage, "nightly")
    assert row == replace(
        again,
        next_tick_at=at(2000),
        created_at=at(0),
        last_tick_at=at(1000),
        last_execution_id="te_tick",
    )
    # Each part of the timing counts: then the new next tick is taken.
    for changed in (
        {"cron": "0 4 * * *"},
        {"timezone": "UTC"},
        {"cron": None, "every_ms": 60_000},
        {"cron": None, "every_ms": 30_000},
    ):
        moved = replace(row, next_tick_at=row.next_tick_at + timedelta(seconds=1), **changed)
        await register(storage, moved)
        [row] = await stored(storage, "nightly")
        assert row == moved, changed


async def test_advance_is_a_compare_and_set(storage: DurableStorage) -> None:
    await register(storage, schedule(), schedule("other"))
    assert await advanced(storage, advance())
    assert not await advanced(storage, advance(execution_id="te_late"))  # that tick is gone
    assert not await advanced(storage, advance("unknown"))
    [row, other] = await stored(storage, "nightly", "other")
    assert (row.next_tick_at, row.last_tick_at, row.last_execution_id, row.updated_at) == (
        at(2000),
        at(1000),
        "te_tick",
        at(1005),
    )
    assert other == schedule("other")
    assert await advanced(storage, advance(expected=2000, execution_id="te_next"))


async def test_timestamps_compare_as_instants_whatever_their_zone(
    storage: DurableStorage,
) -> None:
    plus_two = timezone(timedelta(hours=2))
    await register(storage, schedule(next_tick_at=at(1000).astimezone(plus_two)))
    [row] = await stored(storage, "nightly")
    assert row.next_tick_at == at(1000)
    tick = advance(expected_next_tick_at=at(1000).astimezone(plus_two))
    assert await advanced(storage, tick)


async def test_naive_timestamps_are_refused(storage: DurableStorage) -> None:
    naive = datetime(2026, 1, 1)
    with pytest.raises(ValueError, match="naive"):
        await register(storage, schedule(next_tick_at=naive))
    with pytest.raises(ValueError, match="naive"):
        await advanced(storage, advance(expected_next_tick_at=naive))
    assert await stored(storage, "nightly") == []


async def test_the_advance_and_the_ticks_execution_roll_back_together(
    storage: DurableStorage,
) -> None:
    await register(storage, schedule())

    class Crash(Exception):
        pass

    async def crash_after_firing() -> None:
        async with storage.transaction() as tx:
            assert await tx.advance_task_schedule(advance())
            await tx.insert_task_executions([record("te_tick")])
            raise Crash

    with pytest.raises(Crash):
        await crash_after_firing()
    assert await stored(storage, "nightly") == [schedule()]
    assert await read(storage, "te_tick") is None
    # The tick is still due: the next transaction fires it.
    async with storage.transaction() as tx:
        assert await tx.advance_task_schedule(advance())
        await tx.insert_task_executions([record("te_tick")])
    assert await read(storage, "te_tick") is not None
    assert (await stored(storage, "nightly"))[0].last_execution_id == "te_tick"


async def test_a_rolled_back_registration_leaves_nothing(storage: DurableStorage) -> None:
    await register(storage, schedule("kept"))

    async def register_then_fail() -> None:
        async with storage.transaction() as tx:
            await tx.register_task_schedules([schedule(), schedule("kept", cron="0 5 * * *")])
            raise RuntimeError

    with pytest.raises(RuntimeError):
        await register_then_fail()
    assert await stored(storage, "nightly", "kept") == [schedule("kept")]


async def test_concurrent_advances_of_one_tick_have_one_winner(storage: DurableStorage) -> None:
    await register(storage, schedule())
    ids = [f"te_{n}" for n in range(8)]

    async def fire(execution_id: str) -> bool:
        async with storage.transaction() as tx:
            won = await tx.advance_task_schedule(advance(execution_id=execution_id))
            if won:
                await tx.insert_task_executions([record(execution_id)])
            return won

    results = await asyncio.gather(*(fire(execution_id) for execution_id in ids))
    assert sum(results) == 1
    winner = ids[results.index(True)]
    assert (await stored(storage, "nightly"))[0].last_execution_id == winner
    present = [execution_id for execution_id in ids if await read(storage, execution_id)]
    assert present == [winner]


async def test_list_task_schedules_names_the_last_executions_status(
    storage: DurableStorage,
) -> None:
    assert isinstance(storage, InspectableSchedulesStorage)
    assert await storage.list_task_schedules() == []
    await insert(storage, record("te_done", status="completed"))
    await register(storage, schedule("c"), schedule("a"), schedule("b"))
    assert await advanced(storage, advance("a", execution_id="te_done"))
    assert await advanced(storage, advance("b", execution_id="te_pruned"))
    listed = await storage.list_task_schedules()
    assert [(item.schedule.schedule_id, item.last_execution_status) for item in listed] == [
        ("a", "completed"),
        ("b", None),
        ("c", None),
    ]
    assert listed[2] == ScheduleListing(schedule("c"), None)
    assert listed[0].schedule.last_tick_at == at(1000)
    assert listed[0].schedule.next_tick_at > T0
