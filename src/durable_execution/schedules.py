"""Schedules: a task run on a cron expression or a fixed interval (``executor.schedule``).

A schedule is defined in code, before the executor starts::

    executor.schedule(report, id="nightly-report", cron="0 3 * * *", timezone="Europe/Berlin")
    executor.schedule(poll, id="poll-feeds", every_ms=60_000, input={"feeds": 12})

Every executor that defines it stores it (by id) when it starts and then fires its ticks; each
tick creates exactly one execution however many executors run it, because an executor fires a
tick with a compare-and-set on the schedule's row in the same transaction as the execution's
insert. After downtime, the latest missed tick fires once (see ``_schedule_ticks``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["Schedule", "schedule_tick_key"]


@dataclass(frozen=True, slots=True)
class Schedule:
    """A schedule as defined with ``executor.schedule``: exactly one of ``cron`` (five fields,
    read in ``timezone``) and ``every_ms`` is set."""

    id: str
    task_id: str
    cron: str | None
    every_ms: int | None
    timezone: str


def schedule_tick_key(schedule_id: str, tick_at: datetime) -> str:
    """The key naming one tick of a schedule: ``schedule:<id>:<tick time, UTC, ISO 8601>``
    (``schedule:nightly-report:2026-03-29T01:00:00.000Z``). A schedule id holds no ``:``, so
    the key is unambiguous; every executor derives the same key for the same tick."""
    moment = tick_at.astimezone(UTC).isoformat(timespec="milliseconds")
    return f"schedule:{schedule_id}:{moment.removesuffix('+00:00')}Z"
