"""Cancelling executions: by a user's handle, and runs cancelled from another process.

A cancel writes the finished status ``cancelled`` (guarded by the status and version it read).
If the execution runs in this process its attempt is cancelled at once and the row's
``needs_promise_cancellation`` flag is left false; otherwise the flag asks whichever executor runs
it to stop it, which :class:`RemoteCancellationWatcher` does for this executor's runs.
"""

from __future__ import annotations

import logging
from collections.abc import Container, Sequence
from typing import Final, Literal, TypeAlias

from durable_execution import clock
from durable_execution._runtime import Runtime
from durable_execution._transactions import TransactionRunner, run_sync
from durable_execution.errors import DurableExecutionCancelledError, DurableExecutionError
from durable_execution.model import ACTIVE_STATUSES
from durable_execution.storage.sync_types import SyncStorage, SyncStorageTx
from durable_execution.storage.types import (
    DurableStorageTx,
    TaskExecutionCancel,
    TaskExecutionRecord,
)

MAX_CONFLICTS: Final = 5

CancelOutcome: TypeAlias = Literal["cancelled", "already_finished", "not_found"]


async def write_cancellation(
    transactions: TransactionRunner, execution_id: str, *, running_here: Container[str] = ()
) -> CancelOutcome:
    """The guarded write that cancels ``execution_id`` if it is still active.

    ``running_here`` holds the ids whose attempts run in the calling process: those are stopped
    by the caller, every other running attempt is flagged for its own executor to stop. Used by
    handles (through :func:`cancel_execution`) and by code that has no executor at all.
    """

    async def cancel(tx: DurableStorageTx) -> CancelOutcome:
        for _ in range(MAX_CONFLICTS):
            rows = await tx.get_task_executions([execution_id])
            step = cancellation_step(execution_id, rows, running_here)
            if isinstance(step, str):
                return step
            if await tx.cancel_task_execution(step):
                return "cancelled"
        raise kept_changing_error(execution_id)

    return await transactions.run(cancel)


def write_cancellation_sync(
    storage: SyncStorage, logger: logging.Logger, execution_id: str
) -> CancelOutcome:
    """:func:`write_cancellation` for a ``SyncClient`` (which runs no attempts itself)."""

    def cancel(tx: SyncStorageTx) -> CancelOutcome:
        for _ in range(MAX_CONFLICTS):
            rows = tx.get_task_executions([execution_id])
            step = cancellation_step(execution_id, rows, ())
            if isinstance(step, str):
                return step
            if tx.cancel_task_execution(step):
                return "cancelled"
        raise kept_changing_error(execution_id)

    return run_sync(storage, logger, cancel)


def cancellation_step(
    execution_id: str, rows: Sequence[TaskExecutionRecord], running_here: Container[str]
) -> CancelOutcome | TaskExecutionCancel:
    """One try of the guarded cancel, given the rows read for ``execution_id``: the outcome
    when there is nothing to write, else the guarded cancel to write (``"cancelled"`` if it
    matches; a changed row is read again, at most ``MAX_CONFLICTS`` times)."""
    if not rows:
        return "not_found"
    row = rows[0]
    if row.status not in ACTIVE_STATUSES:
        return "already_finished"
    local = row.status == "running" and execution_id in running_here
    return TaskExecutionCancel(
        execution_id=execution_id,
        status=row.status,
        version=row.version,
        error=DurableExecutionCancelledError().to_info(),
        needs_promise_cancellation=not local,
        now=clock.now(),
    )


def kept_changing_error(execution_id: str) -> DurableExecutionError:
    return DurableExecutionError(
        f"Could not cancel execution {execution_id}: it kept changing", is_retryable=True
    )


async def cancel_execution(runtime: Runtime, execution_id: str) -> None:
    """Cancel ``execution_id`` if it is still active; a no-op for finished or unknown ones."""
    outcome = await write_cancellation(
        runtime.transactions, execution_id, running_here=runtime.running
    )
    if outcome != "cancelled":
        return
    runtime.executions_finished([execution_id])
    local_run = runtime.running.get(execution_id)
    if local_run is not None:
        local_run.request_cancel()


class RemoteCancellationWatcher:
    """Stops local runs whose rows another process cancelled (``needs_promise_cancellation``)."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    async def batch(self) -> bool:
        rt = self._rt
        local_ids = list(rt.running)
        if not local_ids:
            return False

        async def claim(tx: DurableStorageTx) -> list[str]:
            return await tx.take_cancellation_requests(
                local_ids, now=clock.now(), limit=rt.config.batch_size
            )

        found = await rt.transactions.run(claim)
        for execution_id in found:
            local_run = rt.running.get(execution_id)
            if local_run is not None:
                local_run.request_cancel()
        return bool(found)
