"""How executions look in a terminal: statuses, timings, errors and trees, with rich.

Stored inputs and outputs are shown as the database holds them (the serializer's JSON text),
shortened; ``--json`` output elsewhere gives them in full.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Final

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from durable_execution import ExecutionErrorInfo, TaskExecutionStatus, clock
from durable_execution._trees import ExecutionNode
from durable_execution.ids import SEQUENTIAL_TASK_ID_PREFIX
from durable_execution.model import ALL_STATUSES
from durable_execution.storage.types import TaskExecutionRecord

STATUS_STYLES: Final[dict[TaskExecutionStatus, str]] = {
    "ready": "bright_black",
    "running": "cyan",
    "waiting_for_children_tasks": "blue",
    "waiting_for_finalize_task": "blue",
    "completed": "green",
    "failed": "red",
    "timed_out": "red",
    "children_tasks_failed": "red",
    "finalize_task_failed": "red",
    "cancelled": "yellow",
}
VALUE_PREVIEW_CHARS: Final = 160


def status_text(status: TaskExecutionStatus) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def format_duration(seconds: float) -> str:
    """``12 ms``, ``1.23 s``, ``4m 05s``, ``2h 03m``: precise when short, readable when long."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_time(moment: datetime | None) -> str:
    return "-" if moment is None else moment.isoformat(timespec="milliseconds")


def timing(record: TaskExecutionRecord, now: datetime | None = None) -> str:
    """How long the execution ran, or how long it has been running or waiting."""
    now = now or clock.now()
    if record.started_at is not None and record.finished_at is not None:
        return format_duration((record.finished_at - record.started_at).total_seconds())
    if record.started_at is not None:
        return f"for {format_duration((now - record.started_at).total_seconds())}"
    if record.status == "ready":
        if record.start_at > now:
            return f"starts in {format_duration((record.start_at - now).total_seconds())}"
        return f"waiting {format_duration((now - record.start_at).total_seconds())}"
    return ""


def preview(text: str | None, limit: int = VALUE_PREVIEW_CHARS) -> str:
    if text is None:
        return "-"
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def summary_error(record: TaskExecutionRecord) -> ExecutionErrorInfo | None:
    """The error a one-line listing shows: the execution's own, else its finalize task's, else
    its first failed child's."""
    error = record.error or record.finalize_task_error
    if error is None and record.children_tasks_errors:
        error = record.children_tasks_errors[0].error
    return error


def error_text(error: ExecutionErrorInfo, prefix: str = "") -> Text:
    flags: list[str] = [error.error_type]
    if error.is_retryable:
        flags.append("retryable")
    if error.is_internal:
        flags.append("internal")
    text = Text(prefix, style="red")
    text.append(error.message, style="red")
    text.append(f" ({', '.join(flags)})", style="bright_black")
    return text


def record_errors(record: TaskExecutionRecord, *, max_child_errors: int = 3) -> list[Text]:
    """The errors worth showing under an execution, most specific first.

    A parent lists at most ``max_child_errors`` of its failed children (each child shows its
    own error in a tree anyway) and counts the rest.
    """
    lines: list[Text] = []
    if record.error is not None:
        # A ready/running execution's error belongs to its previous attempt.
        previous = record.status in ("ready", "running")
        lines.append(error_text(record.error, "previous attempt: " if previous else "error: "))
    if record.finalize_task_error is not None:
        lines.append(error_text(record.finalize_task_error, "finalize task: "))
    child_errors = record.children_tasks_errors or ()
    for child_error in child_errors[:max_child_errors]:
        lines.append(
            error_text(
                child_error.error,
                f"child {child_error.index} ({child_error.task_id} {child_error.execution_id}): ",
            )
        )
    if len(child_errors) > max_child_errors:
        more = len(child_errors) - max_child_errors
        lines.append(Text(f"… and {more} more failed children", style="red"))
    return lines


def node_label(
    record: TaskExecutionRecord,
    *,
    role: str = "",
    now: datetime | None = None,
    show_ids: bool = True,
) -> Text:
    label = Text()
    if role:
        label.append(f"{role} ", style="bright_black")
    label.append(record.task_id, style="bold")
    if record.task_id.startswith(SEQUENTIAL_TASK_ID_PREFIX) and "_finalize_" not in record.task_id:
        label.append(" (sequence)", style="bright_black")
    label.append(f" {record.execution_id} " if show_ids else " ", style="bright_black")
    label.append_text(status_text(record.status))
    spent = timing(record, now)
    if spent:
        label.append(f"  {spent}")
    if record.retry_attempts:
        plural = "retry" if record.retry_attempts == 1 else "retries"
        label.append(f"  after {record.retry_attempts} {plural}", style="magenta")
    return label


def status_counts(records: Iterable[TaskExecutionRecord]) -> str:
    counts = Counter(record.status for record in records)
    return ", ".join(f"{counts[status]} {status}" for status in ALL_STATUSES if counts[status])


def execution_tree(
    root: ExecutionNode, *, max_children: int | None = 20, show_ids: bool = True
) -> Tree:
    """``root`` and its subtree; beyond ``max_children`` children, the rest is summarised."""
    now = clock.now()

    def add(tree: Tree, node: ExecutionNode, role: str) -> None:
        branch = tree.add(node_label(node.record, role=role, now=now, show_ids=show_ids))
        fill(branch, node)

    def fill(branch: Tree, node: ExecutionNode) -> None:
        for line in record_errors(node.record):
            branch.add(line)
        shown = node.children if max_children is None else node.children[:max_children]
        for index, child in enumerate(shown):
            add(branch, child, f"[{index}]")
        hidden = node.children[len(shown) :]
        if hidden:
            records = [child.record for child in hidden]
            branch.add(
                Text(
                    f"… {len(hidden)} more children: {status_counts(records)}",
                    style="bright_black",
                )
            )
        for ref in node.missing:
            branch.add(Text(f"missing: {ref.task_id} {ref.execution_id}", style="red"))
        for error in node.unreadable:
            branch.add(Text(f"unreadable: {error}", style="red"))
        if node.finalize is not None:
            add(branch, node.finalize, "finalize")

    tree = Tree(node_label(root.record, now=now, show_ids=show_ids))
    fill(tree, root)
    return tree


def execution_details(record: TaskExecutionRecord) -> Table:
    """Every stored field a user may want about one execution, as a two-column table."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    rows: list[tuple[str, RenderableType]] = [
        ("execution", record.execution_id),
        ("task", record.task_id),
        ("status", status_text(record.status)),
        ("created", format_time(record.created_at)),
        ("started", format_time(record.started_at)),
        ("finished", format_time(record.finished_at)),
        ("time", timing(record) or "-"),
        ("attempt", f"{record.retry_attempts + 1} of {record.retry_options.max_attempts + 1}"),
        ("timeout", format_duration(record.timeout_ms / 1000)),
        ("priority", str(record.priority)),
        ("input", preview(record.run_input)),
    ]
    if record.idempotency_key is not None:
        # Text, not a str: a key is the user's, and Rich would read [brackets] in it as markup.
        rows.append(("idempotency key", Text(record.idempotency_key)))
    if record.parent_task is not None:
        role = "finalize task of" if record.parent_task.is_finalize_task else "child of"
        rows.append(
            ("parent", f"{role} {record.parent_task.task_id} {record.parent_task.execution_id}")
        )
    if record.root_task is not None:
        rows.append(("root", f"{record.root_task.task_id} {record.root_task.execution_id}"))
    if record.rerun_of is not None:
        rows.append(("rerun of", record.rerun_of))
    if record.queue != "default":
        rows.append(("queue", record.queue))
    if record.concurrency_limit is not None:
        key = repr(record.concurrency_key) if record.concurrency_key else "none (task-wide)"
        rows.append(("concurrency", f"key {key}, at most {record.concurrency_limit} running"))
    if record.run_output is not None and record.children_tasks is not None:
        rows.append(("run output", preview(record.run_output)))
    if record.output is not None:
        rows.append(("output", preview(record.output)))
    if record.children_tasks is not None:
        done = record.children_tasks_completed_count
        rows.append(("children", f"{len(record.children_tasks)} ({done} completed)"))
    if record.status == "running" and record.expires_at is not None:
        rows.append(("lease until", format_time(record.expires_at)))
    if record.lease_expiries:
        # Each one is an attempt whose process died (or stalled) while running it.
        rows.append(("lease expiries", str(record.lease_expiries)))
    errors = record_errors(record, max_child_errors=10)
    if errors:
        rows.append(("errors", Group(*errors)))
    if record.error is not None and record.error.traceback is not None:
        # Only the execution's own error has one: a parent's copies of its children's errors
        # leave it out (`show CHILD_ID` has it).
        rows.append(("traceback", Text(record.error.traceback.rstrip("\n"), style="red")))
    for name, value in rows:
        table.add_row(name, value)
    return table
