"""The command group: one subcommand per module, so each stays small."""

from __future__ import annotations

from collections.abc import Sequence

import click

from durable_execution.cli._dashboard import dashboard
from durable_execution.cli._demo import demo
from durable_execution.cli._executions import cancel, migrate, rerun, show
from durable_execution.cli._inspect import list_command, stats
from durable_execution.cli._prune import prune
from durable_execution.cli._schedules import schedules
from durable_execution.cli._worker import worker


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="durable-execution")
def cli() -> None:
    """Durable tasks in SQLite or PostgreSQL: run workers, inspect and cancel executions.

    Every command takes --db URL (default: the SQLite file durable_execution.db in the current
    directory); set DURABLE_EXECUTION_DB once instead of repeating it. Passwords in URLs are
    never printed.

    \b
    Start here:
      durable-execution demo                       the seed workload, live
      durable-execution worker myapp.tasks:register --db postgresql://…
      durable-execution list --status failed       the newest failed executions
      durable-execution show te_…                  an execution and its subtree
      durable-execution prune --older-than 7d      delete finished trees older than a week
      durable-execution schedules                  schedules with their next and last runs
      durable-execution dashboard                  a web page of it all (127.0.0.1:8000)
    """


for command in (
    demo,
    worker,
    migrate,
    list_command,
    show,
    cancel,
    stats,
    prune,
    dashboard,
    rerun,
    schedules,
):
    cli.add_command(command)


def main(argv: Sequence[str] | None = None) -> None:
    """The console script's entry point (``argv`` defaults to the process's arguments)."""
    cli.main(args=None if argv is None else list(argv), prog_name="durable-execution")
