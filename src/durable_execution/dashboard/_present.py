"""Stored executions turned into what the templates show: plain values, no web framework.

The templates only lay these out; every decision about what a person sees (which errors, how a
value is shortened, how long something took) is made here, mirroring the CLI's ``show``
(:mod:`durable_execution.cli._render`) so both tell the same story.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal

from durable_execution import ExecutionErrorInfo, TaskExecutionStatus
from durable_execution._trees import ExecutionNode
from durable_execution.cli._render import format_duration, summary_error, timing
from durable_execution.ids import SEQUENTIAL_TASK_ID_PREFIX
from durable_execution.model import ACTIVE_STATUSES, ALL_STATUSES, FINISHED_STATUSES
from durable_execution.storage import MalformedRowError, TaskExecutionRecord

# A value longer than this (pretty-printed) is cut on the page, with a link to all of it.
VALUE_PAGE_CHARS: Final = 4_000
ERROR_PREVIEW_CHARS: Final = 90
# Children listed under one node of a tree; the rest are counted by status.
TREE_CHILDREN: Final = 100

StatusTone = Literal["ready", "running", "waiting", "done", "failed", "cancelled"]
_TONES: Final[dict[TaskExecutionStatus, StatusTone]] = {
    "ready": "ready",
    "running": "running",
    "waiting_for_children_tasks": "waiting",
    "waiting_for_finalize_task": "waiting",
    "completed": "done",
    "failed": "failed",
    "timed_out": "failed",
    "children_tasks_failed": "failed",
    "finalize_task_failed": "failed",
    "cancelled": "cancelled",
}
STATUS_CHOICES: Final[tuple[str, ...]] = ("active", "finished", *ALL_STATUSES)
STATUS_GROUPS: Final[dict[str, tuple[TaskExecutionStatus, ...]]] = {
    "active": ACTIVE_STATUSES,
    "finished": FINISHED_STATUSES,
    **{status: (status,) for status in ALL_STATUSES},
}


def tone(status: TaskExecutionStatus) -> StatusTone:
    """The colour family of a status (the CSS class ``status-<tone>``)."""
    return _TONES[status]


def is_active(status: TaskExecutionStatus) -> bool:
    return status in ACTIVE_STATUSES


def moment(value: datetime | None) -> str:
    """``2026-12-04 19:13:17.123`` in UTC (the page says so once), or ``-``."""
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def first_error(record: TaskExecutionRecord) -> str:
    """The one-line error the list shows: the execution's own, else its finalize's or a child's."""
    error = summary_error(record)
    if error is None:
        return ""
    message = " ".join(error.message.split())
    return message if len(message) <= ERROR_PREVIEW_CHARS else message[:ERROR_PREVIEW_CHARS] + "…"


def role(record: TaskExecutionRecord) -> str:
    if record.parent_task is None:
        return ""
    return "finalize" if record.parent_task.is_finalize_task else "child"


def is_sequence(task_id: str) -> bool:
    return task_id.startswith(SEQUENTIAL_TASK_ID_PREFIX) and "_finalize_" not in task_id


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the executions list; ``unreadable`` rows carry only an id and the reason."""

    execution_id: str
    task_id: str = ""
    status: TaskExecutionStatus | None = None
    role: str = ""
    created: str = ""
    timing: str = ""
    error: str = ""
    unreadable: str = ""


def rows(records: Sequence[TaskExecutionRecord | MalformedRowError], now: datetime) -> list[Row]:
    shown: list[Row] = []
    for record in records:
        if isinstance(record, MalformedRowError):
            problem = f"unreadable {record.column}: {record.problem}"
            shown.append(Row(record.execution_id, unreadable=problem))
            continue
        shown.append(
            Row(
                execution_id=record.execution_id,
                task_id=record.task_id,
                status=record.status,
                role=role(record),
                created=moment(record.created_at),
                timing=timing(record, now),
                error=first_error(record),
            )
        )
    return shown


def oldest_ready_age(oldest: TaskExecutionRecord | MalformedRowError | None, now: datetime) -> str:
    """How long the longest-waiting ready execution has been due (``-`` when none is ready)."""
    if oldest is None:
        return "-"
    if isinstance(oldest, MalformedRowError):
        return f"unreadable ({oldest.execution_id})"
    if oldest.start_at > now:
        return f"none due (next in {format_duration((oldest.start_at - now).total_seconds())})"
    return format_duration((now - oldest.start_at).total_seconds())


@dataclass(frozen=True, slots=True)
class Value:
    """A stored payload (the serializer's JSON text) pretty-printed, cut at ``VALUE_PAGE_CHARS``."""

    text: str
    total_chars: int
    truncated: bool


def value(stored: str | None, limit: int = VALUE_PAGE_CHARS) -> Value | None:
    if stored is None:
        return None
    full = pretty(stored)
    if len(full) <= limit:
        return Value(full, len(full), truncated=False)
    return Value(full[:limit], len(full), truncated=True)


def pretty(stored: str) -> str:
    """Indented JSON when the text is JSON (a custom serializer's may not be: shown as stored)."""
    try:
        decoded = json.loads(stored)
    except ValueError:
        return stored
    return json.dumps(decoded, indent=2, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class ErrorLine:
    label: str
    error: ExecutionErrorInfo
    link: str | None = None  # the execution the error belongs to, when it is another one

    @property
    def flags(self) -> str:
        flags: list[str] = [self.error.error_type]
        if self.error.exception_type:
            flags.append(self.error.exception_type)
        if self.error.is_retryable:
            flags.append("retryable")
        if self.error.is_internal:
            flags.append("internal")
        return ", ".join(flags)


def error_lines(record: TaskExecutionRecord, max_child_errors: int = 10) -> list[ErrorLine]:
    """The errors worth showing for an execution, as the CLI's ``show`` lists them."""
    lines: list[ErrorLine] = []
    if record.error is not None:
        # A ready/running execution's error belongs to its previous attempt.
        previous = record.status in ("ready", "running")
        lines.append(ErrorLine("previous attempt" if previous else "error", record.error))
    if record.finalize_task_error is not None:
        link = record.finalize_task.execution_id if record.finalize_task else None
        lines.append(ErrorLine("finalize task", record.finalize_task_error, link))
    for child in (record.children_tasks_errors or ())[:max_child_errors]:
        lines.append(
            ErrorLine(f"child {child.index} ({child.task_id})", child.error, child.execution_id)
        )
    return lines


@dataclass(frozen=True, slots=True)
class TreeNode:
    """One execution in the tree on an execution's page."""

    record: TaskExecutionRecord
    role: str
    timing: str
    children: tuple[TreeNode, ...]
    finalize: TreeNode | None
    hidden_children: str  # "… 12 more: 10 completed, 2 failed" or ""
    missing: tuple[str, ...]
    unreadable: tuple[str, ...]
    errors: tuple[ErrorLine, ...] = field(default=())

    @property
    def is_sequence(self) -> bool:
        return is_sequence(self.record.task_id)


def tree(root: ExecutionNode, now: datetime, max_children: int = TREE_CHILDREN) -> TreeNode:
    def build(node: ExecutionNode, node_role: str) -> TreeNode:
        shown = node.children[:max_children]
        hidden = node.children[len(shown) :]
        summary = ""
        if hidden:
            counts = Counter(child.record.status for child in hidden)
            parts = ", ".join(f"{counts[s]} {s}" for s in ALL_STATUSES if counts[s])
            summary = f"… {len(hidden)} more children: {parts}"
        return TreeNode(
            record=node.record,
            role=node_role,
            timing=timing(node.record, now),
            children=tuple(build(child, f"[{index}]") for index, child in enumerate(shown)),
            finalize=None if node.finalize is None else build(node.finalize, "finalize"),
            hidden_children=summary,
            missing=tuple(f"{ref.task_id} {ref.execution_id}" for ref in node.missing),
            unreadable=tuple(str(error) for error in node.unreadable),
            errors=tuple(error_lines(node.record, max_child_errors=0)),
        )

    return build(root, "")
