"""Schedules (``executor.schedule``) on every backend: ticks fire executions, once each.

The executor logs each tick it fires ("Schedule S fired tick <key> as execution <id>"); the
tests read those lines to know which executor fired which tick, and compare them with the
executions the storage holds: every stored execution of a scheduled task came from exactly one
fired tick, and no tick key was fired twice.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import cast

import pytest

from durable_execution import (
    DurableExecutionError,
    DurableExecutionNotFoundError,
    DurableExecutor,
    Schedule,
    Task,
    TaskContext,
    clock,
)
from durable_execution.model import ALL_STATUSES
from durable_execution.storage import (
    DurableStorage,
    DurableStorageTx,
    InspectableSchedulesStorage,
    ScheduleRecord,
    ScheduleTickAdvance,
    TaskExecutionRecord,
)

from ._support import MakeExecutor, all_records, eventually

_FIRED = re.compile(r"Schedule (\S+) fired tick (\S+) as execution (\S+)")


def fired(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    """(tick key, execution id) of every tick fired so far, by any executor of this process."""
    return [
        (match.group(2), match.group(3))
        for entry in caplog.records
        if (match := _FIRED.fullmatch(entry.getMessage()))
    ]


async def executions_of(storage: DurableStorage, task_id: str) -> list[TaskExecutionRecord]:
    return [row for row in await all_records(storage) if row.task_id == task_id]


async def stored_schedule(storage: DurableStorage, schedule_id: str) -> ScheduleRecord:
    async with storage.transaction() as tx:
        [row] = await tx.get_task_schedules([schedule_id])
    return row


def register_echo(executor: DurableExecutor, seen: list[int] | None = None) -> Task[int, int]:
    def echo(ctx: TaskContext, value: int) -> int:
        if seen is not None:
            seen.append(value)
        return value

    return executor.task(id="echo", timeout_ms=10_000, run=echo)


@pytest.fixture(autouse=True)
def _info_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="durable_execution")


async def test_an_interval_schedule_runs_its_task_with_its_input_at_each_tick(
    make_executor: MakeExecutor, storage: DurableStorage, caplog: pytest.LogCaptureFixture
) -> None:
    executor = await make_executor(start=False)
    seen: list[int] = []
    echo = register_echo(executor, seen)
    defined = executor.schedule(echo, id="echo-often", every_ms=200, input=7)
    assert defined == Schedule(
        id="echo-often", task_id="echo", cron=None, every_ms=200, timezone="UTC"
    )
    await executor.start()
    await eventually(lambda: len(seen) >= 3, what="three scheduled runs")
    await executor.shutdown()
    assert set(seen) == {7}
    ticks = fired(caplog)
    keys = [key for key, _ in ticks]
    assert len(keys) == len(set(keys))
    assert all(key.startswith("schedule:echo-often:") for key in keys)
    stored = await executions_of(storage, "echo")
    assert sorted(row.execution_id for row in stored) == sorted(e for _, e in ticks)
    # Each tick's execution holds the tick's key.
    assert sorted((row.idempotency_key, row.execution_id) for row in stored) == sorted(ticks)
    row = await stored_schedule(storage, "echo-often")
    assert row.last_execution_id == ticks[-1][1]
    assert row.last_tick_at is not None
    assert row.next_tick_at > row.last_tick_at


async def test_executors_sharing_a_storage_fire_each_tick_once(
    make_executor: MakeExecutor, storage: DurableStorage, caplog: pytest.LogCaptureFixture
) -> None:
    executors = [await make_executor(start=False) for _ in range(3)]
    for executor in executors:
        echo = register_echo(executor)
        executor.schedule(echo, id="shared", every_ms=100, input=1)
    for executor in executors:
        await executor.start()
    await eventually(lambda: len(fired(caplog)) >= 8, what="eight fired ticks")
    for executor in executors:
        await executor.shutdown()
    ticks = fired(caplog)
    keys = [key for key, _ in ticks]
    assert len(keys) == len(set(keys)), "a tick fired twice"
    stored = await executions_of(storage, "echo")
    assert sorted(row.execution_id for row in stored) == sorted(e for _, e in ticks)


async def test_after_downtime_the_latest_missed_tick_fires_once(
    make_executor: MakeExecutor, storage: DurableStorage, caplog: pytest.LogCaptureFixture
) -> None:
    # The schedule as an executor stored it three days ago, its next tick long past.
    now = clock.now()
    async with storage.transaction() as tx:
        await tx.register_task_schedules(
            [
                ScheduleRecord(
                    schedule_id="nightly",
                    task_id="echo",
                    cron="0 3 * * *",
                    every_ms=None,
                    timezone="Europe/Berlin",
                    run_input="5",
                    next_tick_at=now - timedelta(days=3),
                    created_at=now - timedelta(days=4),
                    updated_at=now - timedelta(days=4),
                )
            ]
        )
    executor = await make_executor(start=False)
    echo = register_echo(executor)
    executor.schedule(echo, id="nightly", cron="0 3 * * *", timezone="Europe/Berlin", input=5)
    await executor.start()
    await eventually(lambda: len(fired(caplog)) == 1, what="the catch-up tick")
    await asyncio.sleep(0.3)  # a second pass would have fired again by now
    await executor.shutdown()
    [(key, execution_id)] = fired(caplog)
    row = await stored_schedule(storage, "nightly")
    assert row.last_execution_id == execution_id
    assert row.last_tick_at is not None
    assert now - timedelta(days=1) < row.last_tick_at <= now  # the latest 03:00, not 3 days ago
    assert row.next_tick_at > now
    assert key.startswith("schedule:nightly:")
    assert [r.execution_id for r in await executions_of(storage, "echo")] == [execution_id]


async def test_a_changed_timing_starts_from_now_without_catching_up(
    make_executor: MakeExecutor, storage: DurableStorage, caplog: pytest.LogCaptureFixture
) -> None:
    first = await make_executor(start=False)
    first.schedule(register_echo(first), id="report", cron="0 3 * * *", input=1)
    await first.start()
    await first.shutdown()
    assert (await stored_schedule(storage, "report")).cron == "0 3 * * *"
    second = await make_executor(start=False)
    second.schedule(register_echo(second), id="report", cron="0 4 * * MON", input=2)
    await second.start()
    await second.shutdown()
    row = await stored_schedule(storage, "report")
    assert (row.cron, row.run_input, row.timezone) == ("0 4 * * MON", "2", "UTC")
    assert row.next_tick_at.weekday() == 0
    assert (row.next_tick_at.hour, row.next_tick_at.minute) == (4, 0)
    assert fired(caplog) == []


async def test_a_schedule_whose_task_is_not_registered_here_is_left_alone(
    make_executor: MakeExecutor, storage: DurableStorage, caplog: pytest.LogCaptureFixture
) -> None:
    now = clock.now()
    async with storage.transaction() as tx:
        await tx.register_task_schedules(
            [
                ScheduleRecord(
                    schedule_id="elsewhere",
                    task_id="not_here",
                    cron=None,
                    every_ms=100,
                    timezone="UTC",
                    run_input="null",
                    next_tick_at=now,
                    created_at=now,
                    updated_at=now,
                )
            ]
        )
    # This executor defines the schedule id with its own task; another version (with task
    # not_here) stores its definition after this one started.
    executor = await make_executor(start=False)
    executor.schedule(register_echo(executor), id="elsewhere", every_ms=100, input=1)
    await executor.start()
    async with storage.transaction() as tx:
        await tx.register_task_schedules(
            [
                ScheduleRecord(
                    schedule_id="elsewhere",
                    task_id="not_here",
                    cron=None,
                    every_ms=100,
                    timezone="UTC",
                    run_input="null",
                    next_tick_at=now,
                    created_at=now,
                    updated_at=clock.now(),
                )
            ]
        )
    await eventually(
        lambda: any("not registered on this executor" in r.getMessage() for r in caplog.records),
        what="the warning",
    )
    fired_before = len(fired(caplog))
    await asyncio.sleep(0.3)
    await executor.shutdown()
    assert len(fired(caplog)) == fired_before
    assert (await stored_schedule(storage, "elsewhere")).task_id == "not_here"


async def test_the_storage_lists_schedules_with_their_last_run(
    make_executor: MakeExecutor, storage: DurableStorage, caplog: pytest.LogCaptureFixture
) -> None:
    executor = await make_executor(start=False)
    executor.schedule(register_echo(executor), id="listed", every_ms=100, input=3)
    await executor.start()
    await eventually(lambda: len(fired(caplog)) >= 1, what="a fired tick")
    await executor.shutdown()
    assert isinstance(storage, InspectableSchedulesStorage)
    [listing] = await storage.list_task_schedules()
    assert listing.schedule.schedule_id == "listed"
    assert listing.schedule.last_execution_id == fired(caplog)[-1][1]
    assert listing.last_execution_status in ALL_STATUSES


class _TickTx:
    """A transaction that notes whether it advanced a schedule (and forwards everything)."""

    def __init__(self, inner: DurableStorageTx) -> None:
        self._inner = inner
        self.advanced = False

    async def advance_task_schedule(self, advance: ScheduleTickAdvance) -> bool:
        won = await self._inner.advance_task_schedule(advance)
        self.advanced = self.advanced or won
        return won

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


class _LostTickAcknowledgement:
    """The real storage; the first transaction that fires a tick commits, then raises as a
    commit whose acknowledgement was lost does (a dropped connection): its outcome is unknown
    to the executor, which retries the transaction."""

    def __init__(self, inner: DurableStorage) -> None:
        self.inner = inner
        self.cuts = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DurableStorageTx]:
        async with self.inner.transaction() as tx:
            tick_tx = _TickTx(tx)
            yield cast("DurableStorageTx", tick_tx)
        if tick_tx.advanced and not self.cuts:
            self.cuts += 1
            raise ConnectionResetError("connection lost before the commit was acknowledged")


async def test_a_tick_whose_commit_outcome_was_unknown_fires_once(
    storage: DurableStorage, caplog: pytest.LogCaptureFixture
) -> None:
    cutting = _LostTickAcknowledgement(storage)
    executor = DurableExecutor(cutting, background_process_intra_batch_sleep_ms=50)
    # Yearly: the tick after the one due now is months away.
    executor.schedule(register_echo(executor), id="cut", cron="0 0 1 1 *", input=1)
    async with storage.transaction() as tx:  # the next tick is due now
        await tx.register_task_schedules(
            [
                ScheduleRecord(
                    schedule_id="cut",
                    task_id="echo",
                    cron="0 0 1 1 *",
                    every_ms=None,
                    timezone="UTC",
                    run_input="1",
                    next_tick_at=clock.now(),
                    created_at=clock.now(),
                    updated_at=clock.now(),
                )
            ]
        )
    async with executor:
        await eventually(lambda: cutting.cuts == 1, what="the lost acknowledgement")
        await asyncio.sleep(0.3)  # the retried transaction has run by now
    assert any("Transaction failed" in r.getMessage() for r in caplog.records)
    stored = await executions_of(storage, "echo")
    assert len(stored) == 1
    assert (await stored_schedule(storage, "cut")).last_execution_id == stored[0].execution_id


# --- refusals ---------------------------------------------------------------------------------


async def test_bad_schedules_are_refused_when_defined(make_executor: MakeExecutor) -> None:
    executor = await make_executor(start=False)
    echo = register_echo(executor)
    other = DurableExecutor(executor._rt.transactions.storage)

    def foreign(ctx: TaskContext, value: int) -> int:
        return value

    foreign_only = other.task(id="foreign_only", timeout_ms=1000, run=foreign)
    with pytest.raises(DurableExecutionNotFoundError, match="foreign_only"):
        executor.schedule(foreign_only, id="x", every_ms=1000, input=1)
    with pytest.raises(ValueError, match="schedule id 'a:b' may hold only"):
        executor.schedule(echo, id="a:b", every_ms=1000, input=1)
    with pytest.raises(ValueError, match="non-empty string"):
        executor.schedule(echo, id="", every_ms=1000, input=1)
    with pytest.raises(ValueError, match="bad hour field: '24'"):
        executor.schedule(echo, id="x", cron="0 24 * * *", input=1)
    with pytest.raises(ValueError, match="unknown timezone 'Mars/Olympus'"):
        executor.schedule(echo, id="x", cron="0 3 * * *", timezone="Mars/Olympus", input=1)
    with pytest.raises(ValueError, match="exactly one of cron= and every_ms="):
        executor.schedule(echo, id="x", input=1)
    with pytest.raises(DurableExecutionError, match="input of schedule 'x'"):
        executor.schedule(echo, id="x", every_ms=1000, input=object())  # type: ignore[misc]
    executor.schedule(echo, id="x", every_ms=1000, input=1)
    with pytest.raises(ValueError, match="'x' is already defined on this executor"):
        executor.schedule(echo, id="x", cron="0 3 * * *", input=1)
    await executor.start()
    with pytest.raises(DurableExecutionError, match="before the executor starts"):
        executor.schedule(echo, id="y", every_ms=1000, input=1)


async def test_an_input_its_validator_refuses_fails_start(
    make_executor: MakeExecutor, storage: DurableStorage
) -> None:
    executor = await make_executor(start=False)

    async def positive(value: int) -> int:
        if value <= 0:
            raise ValueError("must be positive")
        return value

    checked = executor.validate_input(positive).task(
        id="checked", timeout_ms=1000, run=lambda ctx, value: value
    )
    executor.schedule(checked, id="checked-often", every_ms=1000, input=-1)
    with pytest.raises(DurableExecutionError, match="Invalid input to task checked"):
        await executor.start()
    assert isinstance(storage, InspectableSchedulesStorage)
    assert await storage.list_task_schedules() == []
