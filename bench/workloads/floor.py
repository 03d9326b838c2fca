"""The floor: what the database itself allows for a task lifecycle on this machine.

The same number of rows as W1 goes through the minimum SQL a task lifecycle needs — insert,
claim (mark running, FIFO), complete (guarded by status and version), close — with plain driver
calls (``sqlite3``, sync ``psycopg``) in one process, on the library's own table and indexes
(created from the generated migrations, so the floor follows schema changes), with the
library's connection settings (SQLite: WAL, the target's ``synchronous`` — FULL unless the
run asked for NORMAL —, ``BEGIN IMMEDIATE``;
PostgreSQL: server defaults, READ COMMITTED, ``FOR UPDATE SKIP LOCKED``).

Two shapes, so executor figures can be read against both:

* ``batch=100``: each step handles up to 100 rows per transaction (``executemany`` for the
  per-row writes — pipelined by psycopg) — the best the library could hope to approach;
* ``batch=1``: one row per transaction per step — what a naive executor pays.

Rows per second = N / (time from the first insert until the last row is closed).
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Final, NamedTuple, Protocol

import psycopg
from psycopg.rows import TupleRow

from bench.cases import Case, Sample, SampleContext, Scale, WorkloadFailedError
from bench.figures import Metric
from bench.targets import Target
from durable_execution.generated.postgresql.migrations import (
    migrations_for_table as postgres_migrations,
)
from durable_execution.generated.sqlite.migrations import migrations_for_table as sqlite_migrations
from durable_execution.storage import SqliteSynchronous

ROWS_PER_S: Final = Metric(
    "rows_per_s", "rows/s", True, "rows through insert, claim, complete and close per second"
)

TABLE: Final = "durable_task_executions"
BATCHES: Final = (100, 1)
RETRY_OPTIONS_JSON: Final = '{"max_attempts": 0, "base_delay_ms": 0, "delay_multiplier": 1.0}'
TIMEOUT_MS: Final = 60_000
FINISHED_SQL: Final = (
    "('completed', 'failed', 'timed_out', 'cancelled', 'children_tasks_failed',"
    " 'finalize_task_failed')"
)


def cases(scale: Scale) -> list[Case]:
    return [
        Case(
            workload="floor",
            name=f"floor batch={batch} n={n}",
            params={"n": n, "batch": batch},
            metrics=(ROWS_PER_S,),
            backends=("sqlite", "postgresql"),
            measure=partial(measure, n=n, batch=batch),
        )
        for n in scale.sizes(full=(1_000, 10_000), smoke=50)
        for batch in BATCHES
    ]


class Claimed(NamedTuple):
    execution_id: str
    run_input: str
    version: int


class Lifecycle(Protocol):
    """The four steps, each one transaction over up to ``batch`` rows, on one connection."""

    def insert(self, execution_ids: Sequence[str]) -> None: ...
    def claim(self, limit: int) -> list[Claimed]: ...
    def complete(self, claimed: Sequence[Claimed]) -> None: ...
    def close_finished(self, limit: int) -> int: ...
    def count_completed_and_closed(self) -> int: ...
    def disconnect(self) -> None: ...


def measure(context: SampleContext, n: int, batch: int) -> Sample:
    target = context.target
    execution_ids = [f"te_{secrets.token_hex(12)}" for _ in range(n)]
    lifecycle = _open_lifecycle(target)
    try:
        deadline = time.monotonic() + context.timeout_s
        started = time.perf_counter()
        for start in range(0, n, batch):
            lifecycle.insert(execution_ids[start : start + batch])
        closed = 0
        while closed < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"floor: {closed} of {n} rows closed before the deadline")
            claimed = lifecycle.claim(batch)
            if claimed:
                lifecycle.complete(claimed)
            closed_now = lifecycle.close_finished(batch)
            if not claimed and not closed_now:
                raise WorkloadFailedError(f"floor: stuck with {closed} of {n} rows closed")
            closed += closed_now
        elapsed = time.perf_counter() - started
        done = lifecycle.count_completed_and_closed()
    finally:
        lifecycle.disconnect()
    if done != n:
        raise WorkloadFailedError(f"floor: {done} of {n} rows completed and closed")
    return Sample({ROWS_PER_S.key: n / elapsed})


def _open_lifecycle(target: Target) -> Lifecycle:
    if target.sqlite_path is not None:
        return _SqliteLifecycle(target.sqlite_path, target.sqlite_synchronous)
    if target.postgres_conninfo is not None:
        return _PostgresLifecycle(target.postgres_conninfo)
    raise ValueError(f"the floor needs a SQL backend, not {target.backend}")


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class _SqliteLifecycle:
    def __init__(self, path: Path, synchronous: SqliteSynchronous) -> None:
        self._conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode = WAL")
        # Upper-cased from the closed Literal: no caller text reaches the statement.
        self._conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        for migration in sqlite_migrations(TABLE):
            for statement in migration.statements:
                self._conn.execute(statement)

    def disconnect(self) -> None:
        self._conn.close()

    def _transaction(self, step: Callable[[sqlite3.Connection], object]) -> None:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            step(self._conn)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def insert(self, execution_ids: Sequence[str]) -> None:
        now = _epoch_ms(datetime.now(UTC))
        rows = [(execution_id, str(index), now) for index, execution_id in enumerate(execution_ids)]
        self._transaction(
            lambda conn: conn.executemany(
                f"INSERT INTO {TABLE} (task_id, execution_id, retry_options,"
                " sleep_ms_before_run, timeout_ms, run_input, children_tasks_completed_count,"
                " status, is_closed, needs_promise_cancellation, retry_attempts, start_at,"
                " version, created_at, updated_at)"
                f" VALUES ('bench_echo', ?1, '{RETRY_OPTIONS_JSON}', 0, {TIMEOUT_MS}, ?2, 0,"
                " 'ready', 0, 0, 0, ?3, 0, ?3, ?3)",
                rows,
            )
        )

    def claim(self, limit: int) -> list[Claimed]:
        claimed: list[Claimed] = []
        now = _epoch_ms(datetime.now(UTC))

        def step(conn: sqlite3.Connection) -> None:
            cursor = conn.execute(
                f"UPDATE {TABLE} SET status = 'running', started_at = :now,"
                " expires_at = :now + timeout_ms + 300000, updated_at = :now,"
                " version = version + 1"
                f" WHERE id IN (SELECT id FROM {TABLE} WHERE status = 'ready'"
                " AND start_at <= :now ORDER BY start_at, id LIMIT :limit)"
                " RETURNING execution_id, run_input, version",
                {"now": now, "limit": limit},
            )
            claimed.extend(Claimed(*row) for row in cursor.fetchall())

        self._transaction(step)
        return claimed

    def complete(self, claimed: Sequence[Claimed]) -> None:
        now = _epoch_ms(datetime.now(UTC))
        rows = [(row.run_input, now, row.execution_id, row.version) for row in claimed]
        self._transaction(
            lambda conn: conn.executemany(
                f"UPDATE {TABLE} SET status = 'completed', run_output = ?1, output = ?1,"
                " finished_at = ?2, updated_at = ?2, expires_at = NULL, version = version + 1"
                " WHERE execution_id = ?3 AND status = 'running' AND version = ?4",
                rows,
            )
        )

    def close_finished(self, limit: int) -> int:
        closed: list[int] = []
        now = _epoch_ms(datetime.now(UTC))

        def step(conn: sqlite3.Connection) -> None:
            cursor = conn.execute(
                f"UPDATE {TABLE} SET is_closed = 1, updated_at = :now"
                f" WHERE id IN (SELECT id FROM {TABLE} WHERE status IN {FINISHED_SQL}"
                " AND is_closed = 0 ORDER BY updated_at, id LIMIT :limit) RETURNING id",
                {"now": now, "limit": limit},
            )
            closed.append(len(cursor.fetchall()))

        self._transaction(step)
        return closed[0]

    def count_completed_and_closed(self) -> int:
        row = self._conn.execute(
            f"SELECT count(*) FROM {TABLE} WHERE status = 'completed' AND is_closed = 1"
        ).fetchone()
        return int(row[0]) if row else 0


class _PostgresLifecycle:
    def __init__(self, conninfo: str) -> None:
        self._conn: psycopg.Connection[TupleRow] = psycopg.connect(conninfo)
        with self._conn.transaction():
            for migration in postgres_migrations(TABLE):
                for statement in migration.statements:
                    self._conn.execute(statement)

    def disconnect(self) -> None:
        self._conn.close()

    def insert(self, execution_ids: Sequence[str]) -> None:
        now = datetime.now(UTC)
        with self._conn.transaction(), self._conn.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {TABLE} (task_id, execution_id, retry_options,"
                " sleep_ms_before_run, timeout_ms, run_input, children_tasks_completed_count,"
                " status, is_closed, needs_promise_cancellation, retry_attempts, start_at,"
                " version, created_at, updated_at)"
                f" VALUES ('bench_echo', %s, '{RETRY_OPTIONS_JSON}', 0, {TIMEOUT_MS}, %s, 0,"
                " 'ready', false, false, 0, %s, 0, %s, %s)",
                [
                    (execution_id, str(index), now, now, now)
                    for index, execution_id in enumerate(execution_ids)
                ],
            )

    def claim(self, limit: int) -> list[Claimed]:
        with self._conn.transaction():
            cursor = self._conn.execute(
                f"UPDATE {TABLE} SET status = 'running', started_at = now(),"
                " expires_at = now() + make_interval(secs => (timeout_ms + 300000) / 1000.0),"
                " updated_at = now(), version = version + 1"
                f" WHERE id IN (SELECT id FROM {TABLE} WHERE status = 'ready'"
                " AND start_at <= now() ORDER BY start_at, id LIMIT %s FOR UPDATE SKIP LOCKED)"
                " RETURNING execution_id, run_input, version",
                (limit,),
            )
            return [Claimed(*row) for row in cursor.fetchall()]

    def complete(self, claimed: Sequence[Claimed]) -> None:
        now = datetime.now(UTC)
        with self._conn.transaction(), self._conn.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {TABLE} SET status = 'completed', run_output = %s, output = %s,"
                " finished_at = %s, updated_at = %s, expires_at = NULL, version = version + 1"
                " WHERE execution_id = %s AND status = 'running' AND version = %s",
                [
                    (row.run_input, row.run_input, now, now, row.execution_id, row.version)
                    for row in claimed
                ],
            )

    def close_finished(self, limit: int) -> int:
        with self._conn.transaction():
            cursor = self._conn.execute(
                f"UPDATE {TABLE} SET is_closed = true, updated_at = now()"
                f" WHERE id IN (SELECT id FROM {TABLE} WHERE status IN {FINISHED_SQL}"
                " AND NOT is_closed ORDER BY updated_at, id LIMIT %s FOR UPDATE SKIP LOCKED)"
                " RETURNING id",
                (limit,),
            )
            return len(cursor.fetchall())

    def count_completed_and_closed(self) -> int:
        row = self._conn.execute(
            f"SELECT count(*) FROM {TABLE} WHERE status = 'completed' AND is_closed"
        ).fetchone()
        return int(row[0]) if row else 0
