"""Commands about stored executions: ``migrate``, ``show``, ``cancel`` and ``rerun``."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import click
from rich.console import Console

from durable_execution import (
    DurableExecutionError,
    DurableExecutionNotFoundError,
    DurableStorage,
    cancel_execution,
    rerun_execution,
)
from durable_execution._trees import ExecutionNode, load_tree
from durable_execution.cli._common import (
    CliError,
    Target,
    check_execution_id,
    opened,
    run,
    storage_options,
)
from durable_execution.cli._json import dumps, tree_json
from durable_execution.cli._render import execution_details, execution_tree
from durable_execution.cli._tables import chosen_target
from durable_execution.storage.types import TaskExecutionRecord


@runtime_checkable
class _Migratable(Protocol):
    async def migrate(self) -> list[int]: ...


def _not_found(execution_id: str, target: Target) -> CliError:
    return CliError(f"execution {execution_id} not found in {target.shown}")


@click.command()
@storage_options()
def migrate(db: str, table: str) -> None:
    """Create the schema, or upgrade it to this version's, and say what was applied.

    Safe to run while workers are running and from several processes at once: each migration is
    applied exactly once. Workers also migrate on start unless given --no-migrate.
    """
    target = Target(db, table)

    async def work() -> list[int]:
        async with opened(target, migrate=False) as storage:
            if not isinstance(storage, _Migratable):  # pragma: no cover - every SQL storage is
                raise CliError(f"{target.shown} has no schema to migrate")
            return await storage.migrate()

    applied = run(target, "migrating", work())
    if applied:
        versions = ", ".join(str(version) for version in applied)
        click.echo(f"Applied migration(s) {versions} to {target.shown}.")
    else:
        click.echo(f"The schema of {target.shown} is up to date.")


@click.command()
@click.argument("execution_id", metavar="ID")
@storage_options()
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="List every child; by default a parent shows its first 20 and counts the rest.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the tree as JSON, every field.")
def show(execution_id: str, db: str, table: str, show_all: bool, as_json: bool) -> None:
    """Show execution ID and everything below it: children, finalize tasks, errors, timings.

    Inputs and outputs are shown as stored (the serializer's JSON), shortened; --json prints
    them in full.
    """
    check_execution_id(execution_id)
    target = chosen_target(Target(db, table))  # after make demo: its table

    async def work() -> ExecutionNode | None:
        async with opened(target, migrate=False, must_exist=True) as storage:
            return await load_tree(storage, execution_id)

    tree = run(target, "reading", work())
    if tree is None:
        raise _not_found(execution_id, target)
    if as_json:
        click.echo(dumps(tree_json(tree)))
        return
    console = Console(highlight=False)
    console.print(execution_details(tree.record))
    if tree.children or tree.finalize is not None or tree.missing or tree.unreadable:
        console.print()
        console.print(execution_tree(tree, max_children=None if show_all else 20))


async def _read(storage: DurableStorage, execution_id: str) -> TaskExecutionRecord | None:
    async with storage.transaction() as tx:
        rows = await tx.get_task_executions([execution_id])
    return rows[0] if rows else None


@click.command()
@click.argument("execution_id", metavar="ID")
@storage_options()
def cancel(execution_id: str, db: str, table: str) -> None:
    """Cancel execution ID if it is still active (ready, running or waiting).

    The same as TaskHandle.cancel(), without needing the task registered: the execution becomes
    cancelled at once; if it is running, the worker running it stops the attempt; a cancelled
    parent's active children are cancelled when a worker closes it. Cancelling a finished
    execution changes nothing (and exits 0).
    """
    target = Target(db, table)
    check_execution_id(execution_id)

    async def work() -> tuple[TaskExecutionRecord | None, bool, TaskExecutionRecord | None]:
        async with opened(target, migrate=False, must_exist=True) as storage:
            before = await _read(storage, execution_id)
            if before is None:
                return None, False, None
            try:
                cancelled = await cancel_execution(storage, execution_id)
            except DurableExecutionNotFoundError:
                return None, False, None
            return before, cancelled, await _read(storage, execution_id)

    before, cancelled, after = run(target, "cancelling", work())
    if before is None or after is None:
        raise _not_found(execution_id, target)
    if cancelled:
        click.echo(f"Cancelled {after.task_id} {execution_id} (it was {before.status}).")
    else:
        click.echo(
            f"{after.task_id} {execution_id} had already finished ({after.status}); "
            "nothing changed."
        )


@click.command()
@click.argument("execution_id", metavar="ID")
@storage_options()
def rerun(execution_id: str, db: str, table: str) -> None:
    """Enqueue a new execution of finished execution ID's task, with the same input.

    The original is left as it is; the new execution is a top-level one that `show` links to
    it ("rerun of"). A parent reruns its whole tree (its children are made anew when it runs).
    A worker that registers the task runs it. Prints the new execution's id.
    """
    target = Target(db, table)
    check_execution_id(execution_id)

    async def work() -> TaskExecutionRecord | None:
        async with opened(target, migrate=False, must_exist=True) as storage:
            try:
                return await rerun_execution(storage, execution_id)
            except DurableExecutionNotFoundError:
                return None
            except DurableExecutionError as error:
                raise CliError(str(error)) from None

    record = run(target, "rerunning", work())
    if record is None:
        raise _not_found(execution_id, target)
    click.echo(record.execution_id)
    click.echo(
        f"Enqueued {record.task_id} {record.execution_id}, a rerun of {execution_id}.", err=True
    )
