"""Calling the optional batch operations of a transaction, with the generic fallback.

The executor calls these instead of testing for the fast path itself, so a third-party storage
that implements only the core contract still works (one statement per item).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from durable_execution import clock
from durable_execution.storage.types import (
    BatchUpdatingStorageTx,
    DurableStorageTx,
    HeldLease,
    LeaseRenewingStorageTx,
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


async def renew_leases(
    tx: DurableStorageTx, leases: Sequence[HeldLease], *, expires_at: datetime
) -> list[str]:
    """The ids of ``leases`` renewed to ``expires_at`` (rows still running at that version)."""
    if not leases:
        return []
    if isinstance(tx, LeaseRenewingStorageTx):
        return await tx.renew_task_execution_leases(leases, expires_at=expires_at)
    matched = await update_each(
        tx,
        [
            (
                WhereByExecutionIds(
                    [lease.execution_id], statuses=["running"], version=lease.version
                ),
                TaskExecutionUpdate(updated_at=clock.now(), expires_at=expires_at),
            )
            for lease in leases
        ],
    )
    return [lease.execution_id for lease, n in zip(leases, matched, strict=True) if n]
