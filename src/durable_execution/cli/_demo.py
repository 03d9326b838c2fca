"""``durable-execution demo``: the seed workload, live, then its finished trees.

The demo keeps to a table of its own (``durable_demo`` by default) so that it can never touch a
real application's executions, even in a shared database: its executor would otherwise claim
them and fail them as executions of unknown tasks. Executions an interrupted earlier demo left
active are cancelled first, for the same reason in reverse.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Final

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from durable_execution import DurableStorage, cancel_execution
from durable_execution._trees import ExecutionNode, build_tree, load_records
from durable_execution._workload import STEPS, WorkloadReport, run_seed_workload
from durable_execution.cli._common import CliError, Target, opened, run, storage_options
from durable_execution.cli._render import execution_tree, format_duration, status_counts
from durable_execution.demo import summarize
from durable_execution.model import ACTIVE_STATUSES
from durable_execution.storage.errors import MalformedRowError
from durable_execution.storage.types import InspectableStorage, TaskExecutionRecord

DEMO_TABLE: Final = "durable_demo"
# The 100 concurrent tasks are summarised in one line; the 250 children show a few each.
_GROUPED_PREFIX: Final = "t"
_CHILDREN_SHOWN: Final = 5


class _LiveProgress:
    """Shows the workload's steps (see ``_workload.STEPS``) as rich progress bars."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._ids: dict[str, TaskID] = {
            step.key: progress.add_task(step.description, total=step.total, start=False)
            for step in STEPS
        }

    def step_started(self, key: str) -> None:
        self._progress.start_task(self._ids[key])

    def advance(self, key: str) -> None:
        self._progress.advance(self._ids[key])


async def _cancel_leftovers(storage: DurableStorage) -> int:
    """Cancel what an interrupted run left active, page by page through the operators'
    listing (newest first)."""
    assert isinstance(storage, InspectableStorage)  # every storage `opened` gives
    cancelled = 0
    before: str | None = None
    while page := await storage.list_task_executions(
        statuses=ACTIVE_STATUSES, limit=500, before_execution_id=before
    ):
        for row in page:
            if not isinstance(row, MalformedRowError):
                cancelled += await cancel_execution(storage, row.execution_id)
        before = page[-1].execution_id
    return cancelled


def _is_concurrent_task(task_id: str) -> bool:
    return task_id.startswith(_GROUPED_PREFIX) and task_id[len(_GROUPED_PREFIX) :].isdigit()


def _concurrent_summary(records: Sequence[TaskExecutionRecord]) -> str:
    durations = [
        (record.finished_at - record.started_at).total_seconds()
        for record in records
        if record.started_at is not None and record.finished_at is not None
    ]
    line = f"{len(records)} concurrent tasks t0…t{len(records) - 1}: {status_counts(records)}"
    if durations:
        line += (
            f"; each ran {format_duration(min(durations))} to {format_duration(max(durations))}"
            f" (median {format_duration(statistics.median(durations))})"
        )
    return line


def _print_results(
    console: Console, report: WorkloadReport, records: Sequence[TaskExecutionRecord]
) -> None:
    grouped = [
        execution_id for task_id, execution_id in report.enqueued if _is_concurrent_task(task_id)
    ]
    by_id = {record.execution_id: record for record in records}
    for task_id, execution_id in report.enqueued:
        if _is_concurrent_task(task_id):
            if execution_id == grouped[0]:
                found = [by_id[item] for item in grouped if item in by_id]
                console.print(_concurrent_summary(found))
            continue
        tree: ExecutionNode | None = build_tree(records, execution_id)
        if tree is None:
            console.print(f"[red]{task_id} {execution_id}: not found in storage[/red]")
            continue
        console.print(execution_tree(tree, max_children=_CHILDREN_SHOWN, show_ids=False))


async def _run_demo(
    target: Target, console: Console
) -> tuple[WorkloadReport, list[TaskExecutionRecord]]:
    async with opened(target, migrate=True) as storage:
        leftovers = await _cancel_leftovers(storage)
        if leftovers:
            console.print(
                f"Cancelled {leftovers} execution(s) an interrupted demo run left active."
            )
        columns = (
            SpinnerColumn(finished_text="[green]✓[/green]"),
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as progress:
            report = await run_seed_workload(storage, progress=_LiveProgress(progress))
        execution_ids = [execution_id for _, execution_id in report.enqueued]
        records = await load_records(storage, execution_ids)
    return report, records


@click.command()
@storage_options(from_env=False, allow_memory=True, default_table=DEMO_TABLE)
def demo(db: str, table: str) -> None:
    """Run the seed workload and check every outcome; exit 0 only if all happened.

    A task tree (parents, children, finalize tasks and a 3-step sequential chain), 100
    concurrent tasks, a task that succeeds on its third attempt, failing tasks, a failing child
    and a failing finalize task, and a parent with 250 children, all run by one executor on
    --db. The finished trees are printed with their statuses and timings.

    The demo uses a table of its own (--table, default durable_demo) and ignores the
    DURABLE_EXECUTION_* environment variables, so it never touches an application's
    executions.
    """
    target = Target(db, table)
    console = Console(highlight=False)
    console.print(f"Running the durable-execution demo on {target.shown}\n")
    report, records = run(target, "the demo", _run_demo(target, console))
    console.print()
    _print_results(console, report, records)
    console.print()
    console.print(summarize(report, target.shown), highlight=False)
    if report.enqueued and not target.is_memory:
        console.print(
            f"\nLook again with: durable-execution show {report.enqueued[0][1]} "
            f"{target.command_options()}",
            soft_wrap=True,
        )
    if not report.ok:
        raise CliError(f"{len(report.failures)} check(s) failed")
