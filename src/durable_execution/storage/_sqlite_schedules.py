"""The SQLite storage's schedule methods (see ``DurableStorageTx``), kept apart from
``sqlite.py`` so that each module stays one job: a mixin of :class:`SQLiteStorageTx`, plus the
listing its storage runs for the CLI."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import TypeVar

from durable_execution.clock import from_epoch_ms, to_epoch_ms
from durable_execution.generated import sqlite as lite
from durable_execution.generated.sqlite.models import (
    DurableTaskExecutionsSchedule,
    ListTaskSchedulesRow,
)
from durable_execution.storage import _schedule_rows
from durable_execution.storage.types import (
    ScheduleListing,
    ScheduleRecord,
    ScheduleTickAdvance,
)

_T = TypeVar("_T")


def _record(row: DurableTaskExecutionsSchedule | ListTaskSchedulesRow) -> ScheduleRecord:
    return ScheduleRecord(
        schedule_id=row.schedule_id,
        task_id=row.task_id,
        cron=row.cron,
        every_ms=row.every_ms,
        timezone=row.timezone,
        run_input=row.run_input,
        next_tick_at=from_epoch_ms(row.next_tick_at),
        created_at=from_epoch_ms(row.created_at),
        updated_at=from_epoch_ms(row.updated_at),
        last_tick_at=None if row.last_tick_at is None else from_epoch_ms(row.last_tick_at),
        last_execution_id=row.last_execution_id,
    )


class SQLiteScheduleMethods:
    """The schedule methods of a SQLite transaction; the class using it provides ``_run`` (one
    step on the connection, inside the transaction) and ``_queries``."""

    _queries: lite.Queries

    async def _run(self, step: Callable[[sqlite3.Connection], _T]) -> _T:
        raise NotImplementedError  # provided by SQLiteStorageTx

    def raise_if_refused(self) -> None:
        raise NotImplementedError  # provided by SQLiteStorageTx

    async def register_task_schedules(self, schedules: Sequence[ScheduleRecord]) -> None:
        """Store schedules by id (see ``DurableStorageTx``): one upsert each."""
        self.raise_if_refused()
        rows = [_schedule_rows.normalised(schedule) for schedule in schedules]
        if not rows:
            return

        def register(conn: sqlite3.Connection) -> None:
            for row in rows:
                self._queries.register_task_schedule(
                    conn,
                    schedule_id=row.schedule_id,
                    task_id=row.task_id,
                    cron=row.cron,
                    every_ms=row.every_ms,
                    timezone=row.timezone,
                    run_input=row.run_input,
                    next_tick_at=to_epoch_ms(row.next_tick_at),
                    now=to_epoch_ms(row.updated_at),
                )

        await self._run(register)

    async def get_task_schedules(self, schedule_ids: Sequence[str]) -> list[ScheduleRecord]:
        self.raise_if_refused()
        if not schedule_ids:
            return []
        rows = await self._run(
            lambda conn: self._queries.get_task_schedules(conn, schedule_ids=schedule_ids)
        )
        return [_record(row) for row in rows]

    async def advance_task_schedule(self, advance: ScheduleTickAdvance) -> bool:
        """Fire a tick, compare-and-set (see ``DurableStorageTx``). The transaction holds the
        database's write lock, so no other one can advance the row between read and write."""
        self.raise_if_refused()
        a = _schedule_rows.normalised_advance(advance)
        changed = await self._run(
            lambda conn: self._queries.advance_task_schedule(
                conn,
                next_tick_at=to_epoch_ms(a.next_tick_at),
                last_tick_at=to_epoch_ms(a.tick_at),
                last_execution_id=a.execution_id,
                updated_at=to_epoch_ms(a.updated_at),
                schedule_id=a.schedule_id,
                expected_next_tick_at=to_epoch_ms(a.expected_next_tick_at),
            )
        )
        return changed == 1


def list_schedules(queries: lite.Queries, conn: sqlite3.Connection) -> list[ScheduleListing]:
    """Every schedule with its last execution's status (the storage's inspection read)."""
    return [
        ScheduleListing(_record(row), _schedule_rows.last_status(row.last_execution_status))
        for row in queries.list_task_schedules(conn)
    ]
