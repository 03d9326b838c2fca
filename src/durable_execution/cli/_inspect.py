"""``list`` and ``stats``: operators' views that need the optional inspection queries.

They use :class:`~durable_execution.storage.types.InspectableStorage` (every bundled SQL backend
implements it), because the storage contract itself has no "newest first" or "count" reads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from durable_execution import DurableStorage, TaskExecutionStatus, clock
from durable_execution.cli._common import CliError, Target, opened, run, storage_options
from durable_execution.cli._json import dumps, record_json
from durable_execution.cli._render import (
    format_duration,
    preview,
    status_text,
    summary_error,
    timing,
)
from durable_execution.cli._tables import chosen_target
from durable_execution.model import ACTIVE_STATUSES, ALL_STATUSES, FINISHED_STATUSES
from durable_execution.storage import InspectableStorage, MalformedRowError, TaskExecutionRecord

STATUS_GROUPS: Final[dict[str, tuple[TaskExecutionStatus, ...]]] = {
    "active": ACTIVE_STATUSES,
    "finished": FINISHED_STATUSES,
    **{status: (status,) for status in ALL_STATUSES},
}
MAX_LIMIT: Final = 1000
ERROR_PREVIEW_CHARS: Final = 60
EXAMPLE_ID: Final = "te_" + "x" * 24


def _inspectable(storage: DurableStorage, target: Target) -> InspectableStorage:
    if not isinstance(storage, InspectableStorage):
        raise CliError(f"{target.shown} does not support listing executions")
    return storage


def _statuses(chosen: Sequence[str]) -> list[TaskExecutionStatus] | None:
    """The statuses ``--status`` names (groups expanded, order kept), or ``None`` for all."""
    if not chosen:
        return None
    expanded: dict[TaskExecutionStatus, None] = {}
    for name in chosen:
        expanded.update(dict.fromkeys(STATUS_GROUPS[name]))
    return list(expanded)


@dataclass(frozen=True, slots=True)
class _Page:
    # An unreadable row (see InspectableStorage) is listed in its place, as unreadable.
    records: Sequence[TaskExecutionRecord | MalformedRowError]
    total: int


def _short_error(record: TaskExecutionRecord) -> str:
    error = summary_error(record)
    return "" if error is None else preview(error.message, ERROR_PREVIEW_CHARS)


def _task(record: TaskExecutionRecord) -> Text:
    text = Text(record.task_id)
    if record.parent_task is not None:
        role = "finalize" if record.parent_task.is_finalize_task else "child"
        text.append(f" ({role})", style="bright_black")
    return text


def _created(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


# Column widths and gaps of the list table (rich's default padding: one space each side).
_GAP: Final = 2
_CREATED_WIDTH: Final = len("2026-01-01 00:00:00")
_TASK_WIDTHS: Final = (12, 32)  # cut with an ellipsis between these
_ERROR_MIN_WIDTH: Final = 12


def _unreadable_json(error: MalformedRowError) -> dict[str, str]:
    return {"execution_id": error.execution_id, "unreadable": str(error)}


def _row(
    record: TaskExecutionRecord | MalformedRowError, now: datetime
) -> tuple[str, Text, Text, str, str, str]:
    if isinstance(record, MalformedRowError):
        problem = f"malformed {record.column}: {record.problem}"
        return record.execution_id, Text("?"), Text("unreadable", style="red"), "", "", problem
    return (
        record.execution_id,
        _task(record),
        status_text(record.status),
        _created(record.created_at),
        timing(record, now),
        _short_error(record),
    )


def _table(records: Sequence[TaskExecutionRecord | MalformedRowError], width: int) -> Table:
    """One line per execution, never wrapped, within ``width`` columns (``--json`` has all).

    The id and the status are never cut (ids are what users copy into `show` and `cancel`); the
    task and the error are cut with an ellipsis; when even that does not fit (80 columns), the
    error column and then the created column are left out, rather than squeezed to nothing.
    """
    now = clock.now()
    rows = [_row(record, now) for record in records]
    status_width = max(len("status"), *(row[2].cell_len for row in rows))
    time_width = max(len("time"), *(len(row[4]) for row in rows))
    task_width = max(len("task"), *(row[1].cell_len for row in rows))
    error_width = max((len(row[5]) for row in rows), default=0)
    task_shown = min(task_width, _TASK_WIDTHS[0])
    used = len(EXAMPLE_ID) + _GAP + task_shown + _GAP + status_width
    shown = {"time": False, "created": False, "error": False}

    def fits(name: str, need: int) -> None:
        nonlocal used
        if need and used + _GAP + need <= width:
            shown[name] = True
            used += _GAP + need

    fits("time", time_width)
    # Then the task's name, whole up to its cap: worth more than the creation time.
    widened = min(min(task_width, _TASK_WIDTHS[1]) - task_shown, max(0, width - used))
    task_shown, used = task_shown + widened, used + widened
    fits("created", _CREATED_WIDTH)
    fits("error", min(error_width, _ERROR_MIN_WIDTH))

    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("execution", no_wrap=True, min_width=len(EXAMPLE_ID))
    table.add_column("task", no_wrap=True, overflow="ellipsis", width=task_shown)
    table.add_column("status", no_wrap=True, min_width=status_width)
    if shown["created"]:
        table.add_column("created (UTC)", no_wrap=True, min_width=_CREATED_WIDTH)
    if shown["time"]:
        table.add_column("time", no_wrap=True, min_width=time_width)
    if shown["error"]:
        error_shown = min(error_width, _ERROR_MIN_WIDTH + max(0, width - used))
        table.add_column("error", no_wrap=True, overflow="ellipsis", style="red", width=error_shown)
    for execution_id, task, status, created, took, error in rows:
        cells: list[str | Text] = [execution_id, task, status]
        cells += [created] if shown["created"] else []
        cells += [took] if shown["time"] else []
        cells += [error] if shown["error"] else []
        table.add_row(*cells)
    return table


@click.command(name="list")
@storage_options()
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(list(STATUS_GROUPS)),
    help="Only executions with this status (repeatable); 'active' and 'finished' are groups.",
)
@click.option("--task", "task_id", metavar="TASK_ID", help="Only executions of this task.")
@click.option("--top-level", is_flag=True, help="Only executions that were enqueued (no children).")
@click.option(
    "--limit",
    type=click.IntRange(1, MAX_LIMIT),
    default=20,
    show_default=True,
    help="Executions per page.",
)
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the page as JSON, every field.")
def list_command(
    db: str,
    table: str,
    statuses: tuple[str, ...],
    task_id: str | None,
    top_level: bool,
    limit: int,
    page: int,
    as_json: bool,
) -> None:
    """List executions, newest first, a page at a time.

    Children and finalize executions are listed too (marked as such) unless --top-level is
    given; `durable-execution show ID` shows one with its whole subtree, and --json gives every
    stored field.
    """
    target = chosen_target(Target(db, table))
    wanted = _statuses(statuses)

    async def work() -> _Page:
        async with opened(target, migrate=False, must_exist=True) as storage:
            inspectable = _inspectable(storage, target)
            records = await inspectable.list_task_executions(
                statuses=wanted,
                task_id=task_id,
                top_level_only=top_level,
                limit=limit,
                offset=(page - 1) * limit,
            )
            counts = await inspectable.count_task_executions_by_status(
                task_id=task_id, top_level_only=top_level
            )
        total = sum(counts.get(status, 0) for status in wanted or ALL_STATUSES)
        return _Page(records, total)

    result = run(target, "listing", work())
    if as_json:
        click.echo(
            dumps(
                {
                    "page": page,
                    "limit": limit,
                    "total": result.total,
                    "executions": [
                        _unreadable_json(record)
                        if isinstance(record, MalformedRowError)
                        else record_json(record)
                        for record in result.records
                    ],
                }
            )
        )
        return
    console = Console(highlight=False)
    pages = max(1, math.ceil(result.total / limit))
    if not result.records:
        if result.total and page > pages:
            raise CliError(f"page {page} is past the last page ({pages})")
        console.print(f"No executions match in {target.shown}.")
        return
    console.print(_table(result.records, console.width))
    first = (page - 1) * limit + 1
    last = first + len(result.records) - 1
    footer = f"\n{first} to {last} of {result.total} (page {page} of {pages})"
    if page < pages:
        footer += f"; next page: add --page {page + 1}"
    console.print(footer, soft_wrap=True)


@dataclass(frozen=True, slots=True)
class _Stats:
    counts: dict[TaskExecutionStatus, int]
    oldest_ready: TaskExecutionRecord | MalformedRowError | None


def _oldest_ready_line(record: TaskExecutionRecord | MalformedRowError | None) -> str:
    if record is None:
        return "No execution is ready."
    if isinstance(record, MalformedRowError):
        return f"The oldest ready execution, {record.execution_id}, is unreadable: {record}."
    waited = (clock.now() - record.start_at).total_seconds()
    what = f"{record.task_id} {record.execution_id}"
    if waited < 0:
        starts = format_duration(-waited)
        return f"No ready execution is due yet; the next, {what}, starts in {starts}."
    return f"Oldest ready execution: {what}, waiting {format_duration(waited)}."


@click.command()
@storage_options()
@click.option("--task", "task_id", metavar="TASK_ID", help="Only executions of this task.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def stats(db: str, table: str, task_id: str | None, as_json: bool) -> None:
    """Count executions by status and say how long the oldest ready one has waited.

    A ready execution that waits long means the workers cannot keep up (or none is running for
    its task).
    """
    target = chosen_target(Target(db, table))

    async def work() -> _Stats:
        async with opened(target, migrate=False, must_exist=True) as storage:
            inspectable = _inspectable(storage, target)
            counts = await inspectable.count_task_executions_by_status(task_id=task_id)
            oldest = await inspectable.get_oldest_ready_task_execution(task_id=task_id)
        return _Stats(counts, oldest)

    result = run(target, "counting", work())
    counts = {status: result.counts.get(status, 0) for status in ALL_STATUSES}
    oldest = result.oldest_ready
    if isinstance(oldest, MalformedRowError):
        readable, unreadable = None, _unreadable_json(oldest)
    else:
        readable, unreadable = oldest, None
    if as_json:
        click.echo(
            dumps(
                {
                    "counts": counts,
                    "total": sum(counts.values()),
                    "oldest_ready": unreadable if readable is None else record_json(readable),
                    "oldest_ready_age_s": None
                    if readable is None
                    else (clock.now() - readable.start_at).total_seconds(),
                }
            )
        )
        return
    console = Console(highlight=False)
    scope = f" of task {task_id}" if task_id else ""
    console.print(f"Executions{scope} in {target.shown}:", soft_wrap=True)
    grid = Table.grid(padding=(0, 2))
    grid.add_column()
    grid.add_column(justify="right")
    for status in ALL_STATUSES:
        grid.add_row(status_text(status), str(counts[status]))
    grid.add_row(Text("total", style="bold"), Text(str(sum(counts.values())), style="bold"))
    console.print(grid)
    console.print(_oldest_ready_line(oldest), soft_wrap=True)
