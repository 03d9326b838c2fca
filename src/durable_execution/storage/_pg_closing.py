"""The PostgreSQL storage's closing and cancelling methods (see ``DurableStorageTx``): reading
and closing finished executions, cancelling, taking cancel requests, failing unreadable rows.
Kept apart from ``postgres.py`` so that each module stays one job: a mixin of
:class:`PostgresStorageTx`."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from durable_execution.generated import postgresql as pg
from durable_execution.model import ExecutionErrorInfo
from durable_execution.storage import _pg_rows, conversion
from durable_execution.storage._pg_pool import Connection
from durable_execution.storage.error_json import error_json
from durable_execution.storage.types import TaskExecutionCancel, TaskExecutionRecord


class PostgresClosingMethods:
    """The closing and cancelling methods of a PostgreSQL transaction; the class using it
    provides the transaction's ``_conn``, ``_queries`` and ``_before_statement``."""

    _conn: Connection
    _queries: pg.AsyncQueries

    def _before_statement(self) -> None:
        raise NotImplementedError  # provided by PostgresStorageTx

    async def get_finished_unclosed_task_executions(
        self, *, limit: int, execution_ids: Sequence[str] | None = None
    ) -> list[TaskExecutionRecord]:
        self._before_statement()
        row_limit = conversion.positive_limit(limit)
        if execution_ids is not None and not execution_ids:
            return []
        q, conn = self._queries, self._conn
        if execution_ids is None:
            rows = await q.get_finished_unclosed_task_executions(conn, row_limit=row_limit)
        else:
            rows = await q.get_finished_unclosed_task_executions_by_ids(
                conn, execution_ids=list(dict.fromkeys(execution_ids)), row_limit=row_limit
            )
        return [conversion.record_from_columns(row) for row in rows]

    async def get_finished_unclosed_task_execution_ids(self, *, limit: int) -> list[str]:
        self._before_statement()
        return await self._queries.get_finished_unclosed_task_execution_ids(
            self._conn, row_limit=conversion.positive_limit(limit)
        )

    async def close_task_executions(self, execution_ids: Sequence[str], *, now: datetime) -> int:
        self._before_statement()
        now = conversion.utc_ms(now, "now")
        if not execution_ids:
            return 0
        return await self._queries.close_task_executions(
            self._conn, now=now, execution_ids=list(dict.fromkeys(execution_ids))
        )

    async def postpone_closing_task_executions(
        self, execution_ids: Sequence[str], *, now: datetime
    ) -> int:
        self._before_statement()
        now = conversion.utc_ms(now, "now")
        if not execution_ids:
            return 0
        return await self._queries.postpone_closing_task_executions(
            self._conn, now=now, execution_ids=list(dict.fromkeys(execution_ids))
        )

    async def cancel_task_execution(self, cancel: TaskExecutionCancel) -> bool:
        self._before_statement()
        arguments = _pg_rows.cancel_arguments(cancel)
        return await self._queries.cancel_task_execution(self._conn, **arguments) > 0

    async def cancel_active_task_executions(
        self,
        execution_ids: Sequence[str],
        *,
        error: ExecutionErrorInfo,
        now: datetime,
        running_here: Collection[str],
    ) -> list[str]:
        self._before_statement()
        now = conversion.utc_ms(now, "now")
        if not execution_ids:
            return []
        return await self._queries.cancel_active_task_executions(
            self._conn,
            error=error_json(error),
            running_here=list(running_here),
            now=now,
            execution_ids=list(dict.fromkeys(execution_ids)),
        )

    async def take_cancellation_requests(
        self, execution_ids: Sequence[str], *, now: datetime, limit: int
    ) -> list[str]:
        self._before_statement()
        now, row_limit = conversion.utc_ms(now, "now"), conversion.positive_limit(limit)
        if not execution_ids:
            return []
        return await self._queries.take_cancellation_requests(
            self._conn,
            now=now,
            execution_ids=list(dict.fromkeys(execution_ids)),
            row_limit=row_limit,
        )

    async def fail_unreadable_task_execution(
        self, execution_id: str, *, error: ExecutionErrorInfo, now: datetime
    ) -> bool:
        self._before_statement()
        changed = await self._queries.fail_unreadable_task_execution(
            self._conn,
            error=error_json(error),
            now=conversion.utc_ms(now, "now"),
            execution_id=execution_id,
        )
        return changed > 0
