"""The SQLite storage's closing and cancelling methods (see ``DurableStorageTx``): reading and
closing finished executions, cancelling, taking cancel requests, failing unreadable rows. Kept
apart from ``sqlite.py`` so that each module stays one job: a mixin of
:class:`SQLiteStorageTx`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import TypeVar

from durable_execution.clock import to_epoch_ms
from durable_execution.generated import sqlite as lite
from durable_execution.model import ExecutionErrorInfo
from durable_execution.storage import _sqlite_rows as _rows
from durable_execution.storage import _sqlite_steps as _steps
from durable_execution.storage import conversion
from durable_execution.storage.types import TaskExecutionCancel, TaskExecutionRecord

_T = TypeVar("_T")


class SQLiteClosingMethods:
    """The closing and cancelling methods of a SQLite transaction; the class using it provides
    ``_run`` (one step on the connection, inside the transaction) and ``_queries``."""

    _queries: lite.Queries

    async def _run(self, step: Callable[[sqlite3.Connection], _T]) -> _T:
        raise NotImplementedError  # provided by SQLiteStorageTx

    def raise_if_refused(self) -> None:
        raise NotImplementedError  # provided by SQLiteStorageTx

    async def get_finished_unclosed_task_executions(
        self, *, limit: int, execution_ids: Sequence[str] | None = None
    ) -> list[TaskExecutionRecord]:
        self.raise_if_refused()
        row_limit = conversion.positive_limit(limit)
        if execution_ids is not None and not execution_ids:
            return []
        q = self._queries
        if execution_ids is None:
            rows = await self._run(
                lambda conn: q.get_finished_unclosed_task_executions(conn, row_limit=row_limit)
            )
        else:
            ids = list(dict.fromkeys(execution_ids))
            rows = await self._run(
                lambda conn: q.get_finished_unclosed_task_executions_by_ids(
                    conn, execution_ids=ids, row_limit=row_limit
                )
            )
        return [_rows.record(row) for row in rows]

    async def get_finished_unclosed_task_execution_ids(self, *, limit: int) -> list[str]:
        self.raise_if_refused()
        row_limit = conversion.positive_limit(limit)
        return await self._run(
            lambda conn: self._queries.get_finished_unclosed_task_execution_ids(
                conn, row_limit=row_limit
            )
        )

    async def close_task_executions(self, execution_ids: Sequence[str], *, now: datetime) -> int:
        self.raise_if_refused()
        at, ids = to_epoch_ms(now), list(dict.fromkeys(execution_ids))
        if not ids:
            return 0
        return await self._run(
            lambda conn: self._queries.close_task_executions(conn, now=at, execution_ids=ids)
        )

    async def postpone_closing_task_executions(
        self, execution_ids: Sequence[str], *, now: datetime
    ) -> int:
        self.raise_if_refused()
        at, ids = to_epoch_ms(now), list(dict.fromkeys(execution_ids))
        if not ids:
            return 0
        return await self._run(
            lambda conn: self._queries.postpone_closing_task_executions(
                conn, now=at, execution_ids=ids
            )
        )

    async def cancel_task_execution(self, cancel: TaskExecutionCancel) -> bool:
        self.raise_if_refused()
        return await self._run(lambda conn: _steps.cancel_one(self._queries, conn, cancel))

    async def cancel_active_task_executions(
        self,
        execution_ids: Sequence[str],
        *,
        error: ExecutionErrorInfo,
        now: datetime,
        running_here: Collection[str],
    ) -> list[str]:
        self.raise_if_refused()
        at, ids = to_epoch_ms(now), list(dict.fromkeys(execution_ids))
        error_text, local = _steps.error_text(error), json.dumps(sorted(running_here))
        if not ids:
            return []
        return await self._run(
            lambda conn: self._queries.cancel_active_task_executions(
                conn, error=error_text, running_here=local, now=at, execution_ids=ids
            )
        )

    async def take_cancellation_requests(
        self, execution_ids: Sequence[str], *, now: datetime, limit: int
    ) -> list[str]:
        self.raise_if_refused()
        at, row_limit = to_epoch_ms(now), conversion.positive_limit(limit)
        ids = list(dict.fromkeys(execution_ids))
        if not ids:
            return []
        return await self._run(
            lambda conn: self._queries.take_cancellation_requests(
                conn, now=at, execution_ids=ids, row_limit=row_limit
            )
        )

    async def fail_unreadable_task_execution(
        self, execution_id: str, *, error: ExecutionErrorInfo, now: datetime
    ) -> bool:
        self.raise_if_refused()
        at, error_text = to_epoch_ms(now), _steps.error_text(error)
        changed = await self._run(
            lambda conn: self._queries.fail_unreadable_task_execution(
                conn, error=error_text, now=at, execution_id=execution_id
            )
        )
        return changed > 0
