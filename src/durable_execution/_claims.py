"""Claiming ready executions, and recovering running ones whose lease expired.

A claim takes at most as many rows as this executor has free slots (and at most a batch), oldest
``start_at`` first, skipping rows other transactions hold. Each row is moved ready -> running by a
write guarded by ``status = ready`` and the version just read, which bumps the version; that new
version is the attempt's fencing token. The claim transaction *is* the pre-run check: a run starts
only after its guarded claim matched and committed, so a row cancelled in the meantime never
runs. The lease (``expires_at = now + timeout_ms + expire_ms``) is written in the same statement.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from durable_execution import clock
from durable_execution._records import TASK_EXPIRED_ERROR
from durable_execution._runner import Runner
from durable_execution._runtime import Runtime
from durable_execution.errors import DurableExecutionNotFoundError
from durable_execution.storage.types import (
    DurableStorageTx,
    TaskExecutionRecord,
    TaskExecutionUpdate,
    WhereByExecutionIds,
    WhereByStartAtLessThan,
    WhereByStatuses,
)
from durable_execution.tasks import TaskDefinition

_ONE_MS = timedelta(milliseconds=1)


class ReadyClaimer:
    def __init__(self, runtime: Runtime, runner: Runner) -> None:
        self._rt = runtime
        self._runner = runner

    async def batch(self) -> bool:
        rt = self._rt
        limit = min(rt.free_slots(), rt.config.batch_size)
        if limit <= 0:
            return False  # a finishing run sets ready_wakeup
        now = clock.now()
        expire = timedelta(milliseconds=rt.config.expire_ms)

        async def claim(
            tx: DurableStorageTx,
        ) -> tuple[list[tuple[TaskExecutionRecord, TaskDefinition]], list[str]]:
            claimed: list[tuple[TaskExecutionRecord, TaskDefinition]] = []
            unknown: list[str] = []
            # start_at <= now: the contract's bound is strict, and both are whole milliseconds.
            rows = await tx.get_task_executions(
                WhereByStartAtLessThan(statuses=["ready"], start_at_less_than=now + _ONE_MS),
                limit=limit,
                skip_locked_for_update=True,
            )
            for row in rows:
                guard = WhereByExecutionIds(
                    [row.execution_id], statuses=["ready"], version=row.version
                )
                definition = rt.registry.get(row.task_id)
                if definition is None:
                    error = DurableExecutionNotFoundError(
                        f"Task {row.task_id} not found. Register it with every executor that"
                        " shares this storage"
                    )
                    update = TaskExecutionUpdate(
                        updated_at=now,
                        status="failed",
                        error=error.to_info(),
                        started_at=now,
                        finished_at=now,
                        version=row.version + 1,
                    )
                    if await tx.update_task_executions(guard, update):
                        unknown.append(row.execution_id)
                    continue
                expires_at = now + timedelta(milliseconds=row.timeout_ms) + expire
                update = TaskExecutionUpdate(
                    updated_at=now,
                    status="running",
                    started_at=now,
                    expires_at=expires_at,
                    version=row.version + 1,
                )
                if await tx.update_task_executions(guard, update):
                    running = replace(
                        row,
                        status="running",
                        started_at=now,
                        expires_at=expires_at,
                        updated_at=now,
                        version=row.version + 1,
                    )
                    claimed.append((running, definition))
            return claimed, unknown

        claimed, unknown = await rt.transactions.run(claim)
        # Started synchronously after the commit: shutdown, which awaits this loop first, then
        # sees every claimed run in the running map.
        for record, definition in claimed:
            self._runner.start(record, definition)
        if unknown:
            rt.logger.error("Executions of unregistered tasks failed: %s", ", ".join(unknown))
            rt.executions_finished(unknown)
        return bool(claimed or unknown)


class LeaseExpirer:
    """Puts running executions whose lease passed (their executor presumably died) back to ready.

    The write bumps the version, so if the original attempt is in fact still alive its result is
    refused; ``retry_attempts`` is unchanged and the error ``Task expired`` becomes ``prev_error``.
    """

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    async def batch(self) -> bool:
        rt = self._rt
        now = clock.now()

        async def expire(tx: DurableStorageTx) -> list[str]:
            expired: list[str] = []
            rows = await tx.get_task_executions(
                WhereByStatuses(statuses=["running"], is_closed=False, expires_at_less_than=now),
                limit=rt.config.batch_size,
                skip_locked_for_update=True,
            )
            for row in rows:
                matched = await tx.update_task_executions(
                    WhereByExecutionIds(
                        [row.execution_id], statuses=["running"], version=row.version
                    ),
                    TaskExecutionUpdate(
                        updated_at=now,
                        status="ready",
                        error=TASK_EXPIRED_ERROR,
                        start_at=now,
                        unset_expires_at=True,
                        version=row.version + 1,
                    ),
                )
                if matched:
                    expired.append(row.execution_id)
            return expired

        expired = await rt.transactions.run(expire)
        if not expired:
            return False
        rt.logger.warning("Leases expired, executions made ready again: %s", ", ".join(expired))
        for execution_id in expired:
            stale = rt.running.get(execution_id)
            if stale is not None:
                stale.request_cancel()
        rt.ready_wakeup.set()
        return True
