"""What every backend does alike with schedules: the stored form of their timestamps.

Schedules are stored as the executions are: aware UTC datetimes truncated to the millisecond
(SQLite keeps epoch milliseconds), so a value read back equals the value written, and the
compare-and-set of :meth:`DurableStorageTx.advance_task_schedule` compares equal values.
"""

from __future__ import annotations

import dataclasses

from durable_execution.model import TaskExecutionStatus
from durable_execution.storage import inspection
from durable_execution.storage.conversion import utc_ms
from durable_execution.storage.types import ScheduleRecord, ScheduleTickAdvance


def normalised(schedule: ScheduleRecord) -> ScheduleRecord:
    """``schedule`` with every timestamp in its stored form (a naive one is refused)."""
    last = schedule.last_tick_at
    return dataclasses.replace(
        schedule,
        next_tick_at=utc_ms(schedule.next_tick_at, "next_tick_at"),
        created_at=utc_ms(schedule.created_at, "created_at"),
        updated_at=utc_ms(schedule.updated_at, "updated_at"),
        last_tick_at=None if last is None else utc_ms(last, "last_tick_at"),
    )


def normalised_advance(advance: ScheduleTickAdvance) -> ScheduleTickAdvance:
    """``advance`` with every timestamp in its stored form (a naive one is refused)."""
    return dataclasses.replace(
        advance,
        expected_next_tick_at=utc_ms(advance.expected_next_tick_at, "expected_next_tick_at"),
        next_tick_at=utc_ms(advance.next_tick_at, "next_tick_at"),
        tick_at=utc_ms(advance.tick_at, "tick_at"),
        updated_at=utc_ms(advance.updated_at, "updated_at"),
    )


def last_status(value: str | None) -> TaskExecutionStatus | None:
    """The joined status of a schedule's last execution (``None``: none, or pruned)."""
    return None if value is None else inspection.counted_status(value)
