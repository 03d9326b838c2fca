"""``durable-execution prune``: retention from the command line."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final

import click

from durable_execution import PruneResult, prune_executions
from durable_execution.cli._common import Target, opened, run, storage_options
from durable_execution.model import FINISHED_STATUSES, TaskExecutionStatus
from durable_execution.retention import DEFAULT_PRUNE_BATCH_SIZE, MAX_PRUNE_BATCH_SIZE

_UNITS: Final = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_PART: Final = re.compile(r"(\d+)(ms|s|m|h|d|w)")


def parse_duration(text: str) -> timedelta:
    """``7d``, ``12h``, ``1d12h``, ``90s``, ``500ms``: whole numbers with units, summed."""
    compact = text.strip().lower().replace(" ", "")
    parts = _PART.findall(compact)
    if not compact or "".join(number + unit for number, unit in parts) != compact:
        raise ValueError(
            f"{text!r} is not a duration: use whole numbers with units ms, s, m, h, d or w, "
            "e.g. 7d, 12h or 1d12h"
        )
    try:
        return sum((int(number) * _UNITS[unit] for number, unit in parts), timedelta())
    except OverflowError:
        raise ValueError(f"{text!r} is too long a duration") from None


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=param) from None


def _summary(result: PruneResult) -> str:
    if not result.trees:
        return "nothing to prune"
    by_status = ", ".join(
        f"{status} {count}" for status, count in sorted(result.executions_by_status.items())
    )
    verb = "would delete" if result.dry_run else "deleted"
    return f"{verb} {result.executions} execution(s) in {result.trees} tree(s) ({by_status})"


@click.command()
@storage_options()
@click.option(
    "--older-than",
    required=True,
    callback=_duration,
    help="Prune trees whose top-level execution finished longer ago than this (7d, 12h, 1d12h).",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(FINISHED_STATUSES),
    help="Only trees whose top-level execution ended with this status (repeatable).",
)
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.option(
    "--batch-size",
    type=click.IntRange(1, MAX_PRUNE_BATCH_SIZE),
    default=DEFAULT_PRUNE_BATCH_SIZE,
    show_default=True,
    help="Trees deleted per transaction.",
)
def prune(
    db: str,
    table: str,
    older_than: timedelta,
    statuses: tuple[TaskExecutionStatus, ...],
    dry_run: bool,
    batch_size: int,
) -> None:
    """Delete finished executions older than --older-than, a whole tree at a time.

    A tree is a top-level execution with its children, finalize executions and chain steps. It
    is deleted only when its top-level execution finished before the bound and every execution
    in it is finished: never part of a tree, never an active execution. Safe to run beside
    workers and from several processes at once; each batch is one short transaction.
    """
    target = Target(db, table)

    async def work() -> PruneResult:
        async with opened(target, migrate=False, must_exist=True) as storage:
            return await prune_executions(
                storage,
                older_than=older_than,
                statuses=statuses or None,
                dry_run=dry_run,
                batch_size=batch_size,
            )

    result = run(target, "pruning", work())
    click.echo(f"{target.shown}: {_summary(result)}.")
