"""Lease expiry: the background loop that re-readies running executions whose executor stopped
renewing their lease (it presumably died), so that a crashed attempt is re-run about
``expire_ms`` after the crash. Renewal is ``_leases``'s (the keeper)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TypeAlias

from durable_execution import clock
from durable_execution._claims import report_quarantined
from durable_execution._outage_log import OutageLog
from durable_execution._quarantine import read_quarantining
from durable_execution._records import TASK_EXPIRED_ERROR, lease_expiries_exceeded_error
from durable_execution._runtime import Runtime
from durable_execution._telemetry import execution_finished, lease_expired
from durable_execution.logs import execution_extra
from durable_execution.storage.errors import MalformedRowError
from durable_execution.storage.types import (
    DurableStorageTx,
    TaskExecutionRecord,
    TaskExecutionUpdate,
    WhereByExecutionIds,
)


class LeaseExpirer:
    """Puts running executions whose lease passed (their executor stopped renewing it, so it
    presumably died) back to ready.

    The write bumps the version, so if the original attempt is in fact still alive its result is
    refused; ``retry_attempts`` is unchanged and the error ``Task expired`` becomes ``prev_error``.
    Each expiry is counted in the row (``lease_expiries``); the one that reaches the executor's
    ``max_lease_expiries`` fails the execution instead, so a task that crashes its process every
    time is not re-run forever. A failed row is closed (and its parent told) like any other.
    Expiries that overlap an outage of this executor's own storage access are not counted: the
    owner was then most likely cut off by the same outage rather than dead, and an outage must
    not fail harmless tasks through ``max_lease_expiries``.
    """

    def __init__(
        self, runtime: Runtime, holds: Callable[[str, int], bool], outages: OutageLog
    ) -> None:
        self._rt = runtime
        self._holds = holds  # whether this executor runs that attempt (the keeper's business)
        self._outages = outages
        self._lease = timedelta(milliseconds=runtime.config.expire_ms)

    async def batch(self) -> bool:
        rt = self._rt
        now = clock.now()
        bound = rt.config.max_lease_expiries
        report_poison: list[MalformedRowError] = []
        outages = self._outages

        async def expire(tx: DurableStorageTx) -> tuple[_Rows, _Rows, _Rows]:
            report_poison.clear()  # a retried transaction starts over
            expired: _Rows = []
            uncounted: _Rows = []
            failed: _Rows = []
            # A poison row is failed and reported here; it counts as none of the lists.
            rows, poison = await read_quarantining(
                tx,
                lambda: tx.get_expired_task_executions(now=now, limit=rt.config.batch_size),
                now,
            )
            report_poison.extend(poison)
            writes: list[tuple[WhereByExecutionIds, TaskExecutionUpdate]] = []
            buckets: list[tuple[TaskExecutionRecord, _Rows]] = []
            for row in rows:
                if self._holds(row.execution_id, row.version):
                    continue  # alive here: the keeper renews or releases it
                end = row.expires_at or now
                counted = not outages.overlaps(end - self._lease, end, current_started=now)
                lease_expiries = row.lease_expiries + 1 if counted else row.lease_expiries
                if counted and bound is not None and lease_expiries >= bound:
                    update = TaskExecutionUpdate(
                        updated_at=now,
                        status="failed",
                        error=lease_expiries_exceeded_error(lease_expiries),
                        lease_expiries=lease_expiries,
                        finished_at=now,
                        unset_expires_at=True,
                        version=row.version + 1,
                    )
                    bucket = failed
                else:
                    update = TaskExecutionUpdate(
                        updated_at=now,
                        status="ready",
                        error=TASK_EXPIRED_ERROR,
                        lease_expiries=lease_expiries,
                        start_at=now,
                        unset_expires_at=True,
                        version=row.version + 1,
                    )
                    bucket = expired if counted else uncounted
                guard = WhereByExecutionIds(
                    [row.execution_id], statuses=["running"], version=row.version
                )
                writes.append((guard, update))
                buckets.append((row, bucket))
            matched = await tx.update_task_executions_each(writes) if writes else []
            for (row, bucket), count in zip(buckets, matched, strict=True):
                if count:
                    bucket.append(row)
            return expired, uncounted, failed

        try:
            expired, uncounted, failed = await rt.transactions.run(expire)
        except Exception:
            outages.failed(now)
            raise
        outages.succeeded(now, clock.now())
        report_quarantined(rt, report_poison)
        if not expired and not uncounted and not failed:
            return bool(report_poison)
        _log_expiries(rt.logger, expired, uncounted, failed, bound)
        for row in [*expired, *uncounted, *failed]:
            lease_expired(row.task_id)
        for row in failed:
            execution_finished(row.task_id, "failed")
        if failed:
            rt.executions_finished([row.execution_id for row in failed])
        for execution_id in [row.execution_id for row in [*expired, *uncounted, *failed]]:
            stale = rt.running.get(execution_id)
            if stale is not None:
                stale.request_cancel()
        rt.ready_wakeup.set()
        return True


_Rows: TypeAlias = list[TaskExecutionRecord]


def _log_expiries(
    logger: logging.Logger, expired: _Rows, uncounted: _Rows, failed: _Rows, bound: int | None
) -> None:
    """One line per execution, with its fields in ``extra`` (see ``logs``)."""

    def extra(row: TaskExecutionRecord, status: str, lease_expiries: int) -> dict[str, object]:
        return execution_extra(
            row.execution_id, row.task_id, row.retry_attempts, status, lease_expiries=lease_expiries
        )

    for row in expired:
        logger.warning(
            "Lease of execution %s of task %s expired (its executor died or stalled);"
            " it is ready to run again",
            row.execution_id,
            row.task_id,
            extra=extra(row, "ready", row.lease_expiries + 1),
        )
    for row in uncounted:
        logger.warning(
            "Lease of execution %s of task %s expired during a storage outage; it is ready to"
            " run again (not counted as a lease expiry: its executor was probably cut off, not"
            " dead)",
            row.execution_id,
            row.task_id,
            extra=extra(row, "ready", row.lease_expiries),
        )
    for row in failed:
        logger.error(
            "Lease of execution %s of task %s expired %d times (max_lease_expiries=%s); it failed",
            row.execution_id,
            row.task_id,
            row.lease_expiries + 1,
            bound,
            extra=extra(row, "failed", row.lease_expiries + 1),
        )
