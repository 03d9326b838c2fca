"""The PostgreSQL storage's schedule methods (see ``DurableStorageTx``), kept apart from
``postgres.py`` so that each module stays one job: a mixin of :class:`PostgresStorageTx`, plus
the listing its storage runs for the CLI."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

from durable_execution.generated import postgresql as pg
from durable_execution.generated.postgresql.models import (
    DurableTaskExecutionsSchedule,
    ListTaskSchedulesRow,
)
from durable_execution.storage import _schedule_rows
from durable_execution.storage._pg_pool import Connection
from durable_execution.storage.types import (
    ScheduleListing,
    ScheduleRecord,
    ScheduleTickAdvance,
)


def _record(row: DurableTaskExecutionsSchedule | ListTaskSchedulesRow) -> ScheduleRecord:
    last = row.last_tick_at
    return ScheduleRecord(
        schedule_id=row.schedule_id,
        task_id=row.task_id,
        cron=row.cron,
        every_ms=row.every_ms,
        timezone=row.timezone,
        run_input=row.run_input,
        next_tick_at=row.next_tick_at.astimezone(UTC),
        created_at=row.created_at.astimezone(UTC),
        updated_at=row.updated_at.astimezone(UTC),
        last_tick_at=None if last is None else last.astimezone(UTC),
        last_execution_id=row.last_execution_id,
    )


class PostgresScheduleMethods:
    """The schedule methods of a PostgreSQL transaction; the class using it provides the
    transaction's ``_conn`` and ``_queries``."""

    _conn: Connection
    _queries: pg.AsyncQueries

    def raise_if_refused(self) -> None:
        raise NotImplementedError  # provided by PostgresStorageTx

    async def register_task_schedules(self, schedules: Sequence[ScheduleRecord]) -> None:
        """Store schedules by id (see ``DurableStorageTx``): one upsert each (an executor
        defines a handful). Concurrent starts are safe: ``ON CONFLICT`` waits for the other
        insert and then updates its row."""
        self.raise_if_refused()
        for schedule in schedules:
            row = _schedule_rows.normalised(schedule)
            await self._queries.register_task_schedule(
                self._conn,
                schedule_id=row.schedule_id,
                task_id=row.task_id,
                cron=row.cron,
                every_ms=row.every_ms,
                timezone=row.timezone,
                run_input=row.run_input,
                next_tick_at=row.next_tick_at,
                now=row.updated_at,
            )

    async def get_task_schedules(self, schedule_ids: Sequence[str]) -> list[ScheduleRecord]:
        self.raise_if_refused()
        if not schedule_ids:
            return []
        rows = await self._queries.get_task_schedules(self._conn, schedule_ids=schedule_ids)
        return [_record(row) for row in rows]

    async def advance_task_schedule(self, advance: ScheduleTickAdvance) -> bool:
        """Fire a tick, compare-and-set (see ``DurableStorageTx``): under READ COMMITTED a
        concurrent advance of the same row makes this UPDATE wait, then re-check its guard
        against the committed row and match nothing."""
        self.raise_if_refused()
        a = _schedule_rows.normalised_advance(advance)
        changed = await self._queries.advance_task_schedule(
            self._conn,
            next_tick_at=a.next_tick_at,
            last_tick_at=a.tick_at,
            last_execution_id=a.execution_id,
            updated_at=a.updated_at,
            schedule_id=a.schedule_id,
            expected_next_tick_at=a.expected_next_tick_at,
        )
        return changed == 1


async def list_schedules(queries: pg.AsyncQueries, conn: Connection) -> list[ScheduleListing]:
    """Every schedule with its last execution's status (the storage's inspection read)."""
    return [
        ScheduleListing(_record(row), _schedule_rows.last_status(row.last_execution_status))
        for row in await queries.list_task_schedules(conn)
    ]
