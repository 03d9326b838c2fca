"""Reading back everything a storage holds, for tests that check what a run left behind.

The storage contract has no "select by status" (every read the executor makes is named for its
purpose), so tests read whole tables through the operators' read-only queries
(:class:`InspectableStorage`), which the three bundled backends implement.
"""

from __future__ import annotations

from collections.abc import Sequence

from durable_execution.model import TaskExecutionStatus
from durable_execution.storage.errors import MalformedRowError
from durable_execution.storage.types import (
    DurableStorage,
    InspectableStorage,
    TaskExecutionRecord,
)

# More rows than any test stores.
_ALL = 10_000_000


async def all_records(
    storage: DurableStorage, statuses: Sequence[TaskExecutionStatus] | None = None
) -> list[TaskExecutionRecord]:
    """Every stored execution (with one of ``statuses``, if given), in insertion order; a row that
    cannot be decoded raises its :class:`MalformedRowError`."""
    assert isinstance(storage, InspectableStorage), f"{storage!r} cannot list its executions"
    newest_first = await storage.list_task_executions(statuses=statuses, limit=_ALL)
    records: list[TaskExecutionRecord] = []
    for row in reversed(newest_first):
        if isinstance(row, MalformedRowError):
            raise row
        records.append(row)
    return records


async def all_ids(
    storage: DurableStorage, statuses: Sequence[TaskExecutionStatus] | None = None
) -> list[str]:
    """The ids of :func:`all_records`."""
    return [record.execution_id for record in await all_records(storage, statuses)]
