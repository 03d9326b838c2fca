"""The executions list's filters, read from (and written back to) the page's query string."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlencode

from durable_execution import TaskExecutionStatus
from durable_execution.dashboard._present import STATUS_CHOICES, STATUS_GROUPS

_UNSET: Final = object()


class FilterError(ValueError):
    """A filter value the list cannot use; the message names the field and the value."""


@dataclass(frozen=True, slots=True)
class Filters:
    status: str = ""
    task_id: str | None = None
    top_level_only: bool = False
    created_from: datetime | None = None
    created_before: datetime | None = None
    before: str | None = None
    # As typed, for the form (datetime-local values, UTC).
    from_text: str = ""
    to_text: str = ""

    @property
    def statuses(self) -> Sequence[TaskExecutionStatus] | None:
        return STATUS_GROUPS[self.status] if self.status else None

    @property
    def any_set(self) -> bool:
        return bool(self.status or self.task_id or self.top_level_only or self.from_text) or bool(
            self.to_text
        )

    def query(self, *, status: object = _UNSET, before: object = _UNSET) -> str:
        """This list's query string, with ``status``/``before`` changed when given."""
        changed = self
        if status is not _UNSET:
            changed = replace(changed, status=str(status or ""))
        if before is not _UNSET:
            changed = replace(changed, before=None if before is None else str(before))
        pairs = [
            ("status", changed.status),
            ("task", changed.task_id or ""),
            ("top", "1" if changed.top_level_only else ""),
            ("from", changed.from_text),
            ("to", changed.to_text),
            ("before", changed.before or ""),
        ]
        return urlencode([(key, value) for key, value in pairs if value])


def _moment(name: str, text: str) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise FilterError(
            f"{name} {text!r} is not a date and time (use 2026-12-04T19:30, UTC)"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def parse_filters(params: Mapping[str, str]) -> Filters:
    status = params.get("status", "").strip()
    if status and status not in STATUS_CHOICES:
        raise FilterError(f"status {status!r} is not one of: {', '.join(STATUS_CHOICES)}")
    from_text = params.get("from", "").strip()
    to_text = params.get("to", "").strip()
    return Filters(
        status=status,
        task_id=params.get("task", "").strip() or None,
        top_level_only=params.get("top", "") not in ("", "0"),
        created_from=_moment("from", from_text),
        created_before=_moment("to", to_text),
        before=params.get("before", "").strip() or None,
        from_text=from_text,
        to_text=to_text,
    )
