"""The memory storage's closing and cancelling methods (see ``DurableStorageTx``): reading and
closing finished executions, cancelling, taking cancel requests, failing unreadable rows. Kept
apart from ``memory.py`` so that each module stays one job: a mixin of
:class:`InMemoryStorageTx`, as ``_pg_closing`` and ``_sqlite_closing`` are of theirs."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Final

from durable_execution.model import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    ExecutionErrorInfo,
)
from durable_execution.storage import conversion
from durable_execution.storage.types import (
    TaskExecutionCancel,
    TaskExecutionRecord,
    TaskExecutionUpdate,
    apply_update,
)

# Set forms of the model's status tuples, for membership tests (memory.py uses FINISHED too).
ACTIVE: Final = frozenset(ACTIVE_STATUSES)
FINISHED: Final = frozenset(FINISHED_STATUSES)


class InMemoryClosingMethods:
    """The closing and cancelling methods of a memory transaction; the class using it provides
    the row access below."""

    def _check_open(self) -> None:
        raise NotImplementedError  # provided by InMemoryStorageTx

    def _row(self, execution_id: str) -> TaskExecutionRecord | None:
        raise NotImplementedError  # provided by InMemoryStorageTx

    def _by_ids(self, execution_ids: Sequence[str]) -> list[TaskExecutionRecord]:
        raise NotImplementedError  # provided by InMemoryStorageTx

    def _finished_unclosed(self) -> Iterable[TaskExecutionRecord]:
        raise NotImplementedError  # provided by InMemoryStorageTx

    def _oldest_updated(
        self, candidates: Iterable[TaskExecutionRecord], limit: int
    ) -> list[TaskExecutionRecord]:
        raise NotImplementedError  # provided by InMemoryStorageTx

    def _write(self, record: TaskExecutionRecord) -> None:
        raise NotImplementedError  # provided by InMemoryStorageTx

    async def get_finished_unclosed_task_executions(
        self, *, limit: int, execution_ids: Sequence[str] | None = None
    ) -> list[TaskExecutionRecord]:
        self._check_open()
        candidates: Iterable[TaskExecutionRecord]
        if execution_ids is None:
            candidates = self._finished_unclosed()
        else:
            candidates = (
                record
                for record in self._by_ids(execution_ids)
                if record.status in FINISHED and not record.is_closed
            )
        return self._oldest_updated(candidates, limit)

    async def get_finished_unclosed_task_execution_ids(self, *, limit: int) -> list[str]:
        return [
            record.execution_id
            for record in await self.get_finished_unclosed_task_executions(limit=limit)
        ]

    async def close_task_executions(self, execution_ids: Sequence[str], *, now: datetime) -> int:
        return self._update_all(execution_ids, TaskExecutionUpdate(updated_at=now, is_closed=True))

    async def postpone_closing_task_executions(
        self, execution_ids: Sequence[str], *, now: datetime
    ) -> int:
        return self._update_all(execution_ids, TaskExecutionUpdate(updated_at=now))

    def _update_all(self, execution_ids: Sequence[str], update: TaskExecutionUpdate) -> int:
        self._check_open()
        rows = self._by_ids(execution_ids)
        for record in rows:
            self._write(apply_update(record, update))
        return len(rows)

    async def cancel_task_execution(self, cancel: TaskExecutionCancel) -> bool:
        self._check_open()
        record = self._row(cancel.execution_id)
        if record is None or record.status != cancel.status or record.version != cancel.version:
            return False
        self._write(
            dataclasses.replace(
                record,
                status="cancelled",
                error=cancel.error,
                needs_promise_cancellation=cancel.needs_promise_cancellation,
                finished_at=cancel.now,
                updated_at=cancel.now,
                version=cancel.version + 1,
            )
        )
        return True

    async def cancel_active_task_executions(
        self,
        execution_ids: Sequence[str],
        *,
        error: ExecutionErrorInfo,
        now: datetime,
        running_here: Collection[str],
    ) -> list[str]:
        self._check_open()
        cancelled: list[str] = []
        for record in self._by_ids(execution_ids):
            if record.status in ACTIVE:
                self._write(
                    dataclasses.replace(
                        record,
                        status="cancelled",
                        error=error,
                        needs_promise_cancellation=record.execution_id not in running_here,
                        finished_at=now,
                        updated_at=now,
                    )
                )
                cancelled.append(record.execution_id)
        return cancelled

    async def take_cancellation_requests(
        self, execution_ids: Sequence[str], *, now: datetime, limit: int
    ) -> list[str]:
        self._check_open()
        limit = conversion.positive_limit(limit)
        asked = [r for r in self._by_ids(execution_ids) if r.needs_promise_cancellation][:limit]
        for record in asked:
            self._write(
                dataclasses.replace(record, needs_promise_cancellation=False, updated_at=now)
            )
        return [record.execution_id for record in asked]

    async def fail_unreadable_task_execution(
        self, execution_id: str, *, error: ExecutionErrorInfo, now: datetime
    ) -> bool:
        self._check_open()
        record = self._row(execution_id)
        if record is None or record.status not in ACTIVE:
            return False
        self._write(
            dataclasses.replace(
                record,
                status="failed",
                error=error,
                started_at=now,
                finished_at=now,
                updated_at=now,
                expires_at=None,
            )
        )
        return True
