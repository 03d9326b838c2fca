"""Shared pieces of the optional inspection queries (:class:`.types.InspectableStorage`).

The SQL backends run generated queries (``queries/<dialect>/inspect.sql``); the in-memory storage
filters its records here with the same rules, so all three answer alike.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TypeGuard, TypeVar

from durable_execution.model import ALL_STATUSES, TaskExecutionStatus
from durable_execution.storage.errors import MalformedRowError, StorageError
from durable_execution.storage.types import TaskExecutionRecord

_Row = TypeVar("_Row")


def decoded(
    row: _Row, decode: Callable[[_Row], TaskExecutionRecord]
) -> TaskExecutionRecord | MalformedRowError:
    """The row's record, or the error that says why it is unreadable: operators' views show one
    bad row as unreadable instead of failing on it (and hiding every other row)."""
    try:
        return decode(row)
    except MalformedRowError as error:
        return error


def each_decoded(
    rows: Iterable[_Row], decode: Callable[[_Row], TaskExecutionRecord]
) -> list[TaskExecutionRecord | MalformedRowError]:
    return [decoded(row, decode) for row in rows]


def check_page(limit: int, offset: int) -> None:
    if limit < 0:
        raise StorageError(f"limit must be >= 0, got {limit}")
    if offset < 0:
        raise StorageError(f"offset must be >= 0, got {offset}")


def check_created_range(created_from: datetime | None, created_before: datetime | None) -> None:
    """Refuse naive bounds: each backend would read them in a different time zone."""
    for name, moment in (("created_from", created_from), ("created_before", created_before)):
        if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None):
            raise StorageError(f"{name} is a naive datetime ({moment!r}); it must be aware")


def _is_status(value: str) -> TypeGuard[TaskExecutionStatus]:
    return value in ALL_STATUSES


def counted_status(value: str) -> TaskExecutionStatus:
    """A status column value from a count query, checked like every decoded row."""
    if not _is_status(value):
        raise StorageError(f"the executions table holds an unknown status {value!r}")
    return value


def _selected(record: TaskExecutionRecord, task_id: str | None, top_level_only: bool) -> bool:
    if task_id is not None and record.task_id != task_id:
        return False
    return not (top_level_only and record.parent_task is not None)


def list_records(
    oldest_first: Sequence[TaskExecutionRecord],
    *,
    statuses: Sequence[TaskExecutionStatus] | None,
    task_id: str | None,
    top_level_only: bool,
    limit: int,
    offset: int,
    before_execution_id: str | None = None,
    created_from: datetime | None = None,
    created_before: datetime | None = None,
) -> list[TaskExecutionRecord]:
    """A page of ``oldest_first`` (records in insertion order), newest first."""
    check_page(limit, offset)
    check_created_range(created_from, created_before)
    if before_execution_id is not None:
        ids = [record.execution_id for record in oldest_first]
        # An unknown cursor (its execution deleted since) gives an empty page, as in SQL.
        end = ids.index(before_execution_id) if before_execution_id in ids else 0
        oldest_first = oldest_first[:end]
    wanted = None if statuses is None else frozenset(statuses)
    matching = [
        record
        for record in reversed(oldest_first)
        if (wanted is None or record.status in wanted)
        and _selected(record, task_id, top_level_only)
        and (created_from is None or record.created_at >= created_from)
        and (created_before is None or record.created_at < created_before)
    ]
    return matching[offset : offset + limit]


def count_by_status(
    records: Iterable[TaskExecutionRecord], *, task_id: str | None, top_level_only: bool
) -> dict[TaskExecutionStatus, int]:
    return dict(
        Counter(record.status for record in records if _selected(record, task_id, top_level_only))
    )


def oldest_ready(
    oldest_first: Sequence[TaskExecutionRecord], *, task_id: str | None
) -> TaskExecutionRecord | None:
    ready = [
        record
        for record in oldest_first
        if record.status == "ready" and _selected(record, task_id, top_level_only=False)
    ]
    # min() keeps the first of equal keys: ties go to the earlier insertion, as in SQL.
    return min(ready, key=lambda record: record.start_at, default=None)
