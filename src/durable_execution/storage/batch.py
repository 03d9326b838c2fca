"""Calling the optional batch operations of a transaction, with the generic fallback.

The executor calls these instead of testing for the fast path itself, so a third-party storage
that implements only the core contract still works (one statement per item).
"""

from __future__ import annotations

from collections.abc import Sequence

from durable_execution.storage.types import (
    BatchUpdatingStorageTx,
    DurableStorageTx,
    TaskExecutionUpdate,
    WhereByExecutionIds,
)


async def update_each(
    tx: DurableStorageTx, updates: Sequence[tuple[WhereByExecutionIds, TaskExecutionUpdate]]
) -> list[int]:
    """The rows each ``(where, update)`` matched, in order; one call on a batching backend."""
    if not updates:
        return []
    if isinstance(tx, BatchUpdatingStorageTx):
        return await tx.update_task_executions_each(updates)
    return [await tx.update_task_executions(where, update) for where, update in updates]
