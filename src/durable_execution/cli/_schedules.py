"""``schedules``: the schedules a database holds, with their next and last runs.

A schedule is stored by every executor that defines it (``executor.schedule``) when it starts,
and its row stays when the code no longer defines it (executors of other applications or
versions may share the database, so no executor deletes what it does not know). A schedule no
started executor fires shows up as *overdue*: its next run is more than ``OVERDUE_AFTER`` past.
That means every worker defining it is down, or it was removed from the code.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from durable_execution import clock
from durable_execution.cli._common import CliError, Target, opened, run, storage_options
from durable_execution.cli._json import dumps, stored_value
from durable_execution.cli._render import format_duration, status_text
from durable_execution.cli._tables import chosen_target
from durable_execution.storage import InspectableSchedulesStorage, ScheduleListing, ScheduleRecord

# Longer past its next run than this, a schedule is not being fired by any executor: the loop
# fires a due tick within a few milliseconds, or seconds on a busy database.
OVERDUE_AFTER: Final = timedelta(minutes=1)


def is_overdue(schedule: ScheduleRecord, now: datetime) -> bool:
    return now - schedule.next_tick_at > OVERDUE_AFTER


def timing(schedule: ScheduleRecord) -> str:
    if schedule.every_ms is not None:
        return f"every {format_duration(schedule.every_ms / 1000)}"
    return f"cron {schedule.cron} ({schedule.timezone})"


def _moment(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _next_run(schedule: ScheduleRecord, now: datetime) -> Text:
    when = _moment(schedule.next_tick_at)
    delta = (schedule.next_tick_at - now).total_seconds()
    if delta >= 0:
        return Text(f"{when} (in {format_duration(delta)})")
    if is_overdue(schedule, now):
        return Text(f"{when} (overdue {format_duration(-delta)})", style="red")
    return Text(f"{when} (due)")


def _last_run(listing: ScheduleListing) -> Text:
    schedule = listing.schedule
    if schedule.last_tick_at is None:
        return Text("never", style="bright_black")
    text = Text(f"{_moment(schedule.last_tick_at)} {schedule.last_execution_id} ")
    if listing.last_execution_status is None:
        text.append("(pruned)", style="bright_black")
    else:
        text.append_text(status_text(listing.last_execution_status))
    return text


def _table(listings: Sequence[ScheduleListing], now: datetime) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("schedule", no_wrap=True)
    table.add_column("task", no_wrap=True)
    table.add_column("timing", no_wrap=True)
    table.add_column("next run (UTC)", no_wrap=True)
    table.add_column("last run (UTC), execution, status", no_wrap=True)
    for listing in listings:
        schedule = listing.schedule
        table.add_row(
            schedule.schedule_id,
            schedule.task_id,
            timing(schedule),
            _next_run(schedule, now),
            _last_run(listing),
        )
    return table


def listing_json(listing: ScheduleListing, now: datetime) -> dict[str, object]:
    schedule = listing.schedule
    return {
        "schedule_id": schedule.schedule_id,
        "task_id": schedule.task_id,
        "cron": schedule.cron,
        "every_ms": schedule.every_ms,
        "timezone": schedule.timezone,
        "input": stored_value(schedule.run_input),
        "next_run_at": schedule.next_tick_at,
        "overdue": is_overdue(schedule, now),
        "last_run_at": schedule.last_tick_at,
        "last_execution_id": schedule.last_execution_id,
        "last_execution_status": listing.last_execution_status,
        "created_at": schedule.created_at,
        "updated_at": schedule.updated_at,
    }


@click.command()
@storage_options()
@click.option("--json", "as_json", is_flag=True, help="Print the schedules as JSON.")
def schedules(db: str, table: str, as_json: bool) -> None:
    """List schedules with their next and last runs.

    Schedules are defined in code (executor.schedule) and stored when an executor that defines
    them starts. One marked overdue is fired by no running executor: every worker that defines
    it is down, or the code no longer defines it (its row stays; the worker that defines it
    again carries on from it).
    """
    target = chosen_target(Target(db, table))

    async def work() -> Sequence[ScheduleListing]:
        async with opened(target, migrate=False, must_exist=True) as storage:
            if not isinstance(storage, InspectableSchedulesStorage):
                raise CliError(f"{target.shown} does not support listing schedules")
            return await storage.list_task_schedules()

    listings = run(target, "listing schedules", work())
    now = clock.now()
    if as_json:
        click.echo(dumps({"schedules": [listing_json(item, now) for item in listings]}))
        return
    console = Console(highlight=False)
    if not listings:
        console.print(
            f"No schedules in {target.shown}. They are stored when an executor that defines"
            " them (executor.schedule) starts.",
            soft_wrap=True,
        )
        return
    console.print(_table(listings, now))
    overdue = sum(is_overdue(item.schedule, now) for item in listings)
    if overdue:
        console.print(
            f"\n{overdue} overdue: no running executor fires them (every worker defining them"
            " is down, or the code no longer defines them).",
            soft_wrap=True,
        )
