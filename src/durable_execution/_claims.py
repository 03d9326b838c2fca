"""Claiming ready executions (their leases are renewed and expired in ``_leases``).

A claim takes at most as many rows as this executor has free slots (and at most a batch), oldest
``start_at`` first, skipping rows other transactions hold. Each row is moved ready -> running by a
write guarded by ``status = ready`` and the version just read, which bumps the version; that new
version is the attempt's fencing token. The claim transaction *is* the pre-run check: a run starts
only after its guarded claim matched and committed, so a row cancelled in the meantime never
runs. The lease (``expires_at = now + expire_ms``, whatever the timeout) is written in the same
statement.

The claim reads whole records; a poison row among them is quarantined (see ``_quarantine``) so
that it cannot block the rows behind it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TypeAlias

from durable_execution import clock
from durable_execution._quarantine import quarantine
from durable_execution._runner import Runner
from durable_execution._runtime import Runtime
from durable_execution._telemetry import claimed as record_claimed
from durable_execution.errors import DurableExecutionNotFoundError
from durable_execution.storage.errors import MalformedRowError
from durable_execution.storage.types import (
    ClaimedTaskExecutions,
    DurableStorageTx,
    TaskExecutionRecord,
    TaskExecutionUpdate,
    WhereByExecutionIds,
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

        transactions = rt.transactions
        if transactions.single_statement_capable:
            # The claim alone is one statement, sent without BEGIN and COMMIT; what this executor
            # cannot run (a poison row, an unregistered task) is set aside afterwards in a
            # transaction of its own, only when there is any: its writes are guarded, and a
            # crash in between leaves those rows running until their lease expires, as after
            # any crash.
            taken = await transactions.run(
                lambda tx: self._take(tx, now, limit), single_statement=True
            )
            claimed, strays = self._split(taken)
            unknown, poison = (
                await transactions.run(lambda tx: self._set_aside(tx, taken, strays, now))
                if strays or taken.malformed
                else ([], [])
            )
        else:
            claimed, unknown, poison = await transactions.run(
                lambda tx: self._claim(tx, now, limit)
            )
        record_claimed([record for record, _ in claimed])
        # Started synchronously after the commit: shutdown, which awaits this loop first, then
        # sees every claimed run in the running map.
        for record, definition in claimed:
            self._runner.start(record, definition)
        if unknown:
            rt.logger.error("Executions of unregistered tasks failed: %s", ", ".join(unknown))
            rt.executions_finished(unknown)
        report_quarantined(rt, poison)
        # A claim takes the oldest due rows up to the limit, so a short batch took them all: the
        # next claim waits for a wake-up (a finished run, an enqueue, a timer, a notice, a poll).
        return len(claimed) + len(unknown) + len(poison) >= limit

    async def _take(self, tx: DurableStorageTx, now: datetime, limit: int) -> ClaimedTaskExecutions:
        """The storage's set-based claim, from the queues this executor serves."""
        rt = self._rt
        return await tx.claim_ready_task_executions(
            now=now,
            limit=limit,
            lease_ms=rt.config.expire_ms,
            queues=rt.config.queues or rt.registry.queues(),
        )

    def _split(
        self, taken: ClaimedTaskExecutions
    ) -> tuple[list[tuple[TaskExecutionRecord, TaskDefinition]], list[TaskExecutionRecord]]:
        """The claimed rows this executor can run (with their task), and the strays it cannot."""
        registry = self._rt.registry
        claimed: list[tuple[TaskExecutionRecord, TaskDefinition]] = []
        strays: list[TaskExecutionRecord] = []
        for row in taken.records:
            definition = registry.get(row.task_id)
            if definition is None:
                strays.append(row)
            else:
                claimed.append((row, definition))
        return claimed, strays

    async def _set_aside(
        self,
        tx: DurableStorageTx,
        taken: ClaimedTaskExecutions,
        strays: list[TaskExecutionRecord],
        now: datetime,
    ) -> tuple[list[str], list[MalformedRowError]]:
        """Quarantine the claim's poison rows and fail its executions of unregistered tasks."""
        poison = [error for error in taken.malformed if await quarantine(tx, error, now)]
        unknown: list[str] = []
        if strays:
            failures = [
                (
                    WhereByExecutionIds(
                        [row.execution_id], statuses=["running"], version=row.version
                    ),
                    _unknown_task_failure(row, now),
                )
                for row in strays
            ]
            matched = await tx.update_task_executions_each(failures)
            unknown = [row.execution_id for row, n in zip(strays, matched, strict=True) if n]
        return unknown, poison

    async def _claim(self, tx: DurableStorageTx, now: datetime, limit: int) -> _Claim:
        """The claim and the setting aside of what this executor cannot run, in one transaction."""
        taken = await self._take(tx, now, limit)
        claimed, strays = self._split(taken)
        unknown, poison = await self._set_aside(tx, taken, strays, now)
        return claimed, unknown, poison


# What one claim transaction produced: runs to start, executions of unregistered tasks that were
# failed, poison rows that were quarantined.
_Claim: TypeAlias = tuple[
    list[tuple[TaskExecutionRecord, TaskDefinition]], list[str], list[MalformedRowError]
]


def _unknown_task_failure(row: TaskExecutionRecord, now: datetime) -> TaskExecutionUpdate:
    error = DurableExecutionNotFoundError(
        f"Task {row.task_id} not found. Register it with every executor that shares this storage"
    )
    return TaskExecutionUpdate(
        updated_at=now,
        status="failed",
        error=error.to_info(),
        started_at=now,
        finished_at=now,
        unset_expires_at=True,
        version=row.version + 1,
    )


def report_quarantined(rt: Runtime, poison: list[MalformedRowError]) -> None:
    """After the commit that failed them: say why, and stop any local attempt of theirs."""
    for error in poison:
        rt.logger.error(
            "Poison row quarantined: execution %s failed: %s", error.execution_id, error
        )
        local_run = rt.running.get(error.execution_id)
        if local_run is not None:
            local_run.request_cancel()
    if poison:
        rt.executions_finished([error.execution_id for error in poison])
