"""How long the dashboard's executions list takes against a 1,000,000-row table.

    python -m bench.dashboard_list                       # SQLite and PostgreSQL
    python -m bench.dashboard_list --rows 100000 --only sqlite

Fills the real schema (migrated by the library) with raw ``INSERT … SELECT`` (a recursive CTE on
SQLite, generate_series on PostgreSQL), then calls the dashboard's ASGI application directly, no
network in between, so the figures are the server's own time per page: the first page, filtered
pages, a page deep in the table through the keyset cursor, the refresh fragment and one
execution's page. Not part of the test run: it takes a minute or two and a few hundred MB.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any, Final

import psycopg

from durable_execution import open_storage
from durable_execution.dashboard import Settings, create_app

DEFAULT_SQLITE: Final = "/tmp/dashboard-bench.db"
DEFAULT_POSTGRES: Final = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_DATABASE: Final = "dashboard_bench"
TABLE: Final = "durable_task_executions"
GOAL_MS: Final = 200.0

# One row per n in 1..rows. Per 100 rows: 2 failed, 1 ready, 1 running, 1 cancelled, the rest
# completed; 20 task ids; every 10th row a child of the row before it; 10 ms between creations.
_SQLITE_FILL: Final = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :rows),
shaped AS (
    SELECT i,
        CASE WHEN i % 100 IN (0, 1) THEN 'failed' WHEN i % 100 = 2 THEN 'ready'
             WHEN i % 100 = 3 THEN 'running' WHEN i % 100 = 4 THEN 'cancelled'
             ELSE 'completed' END AS status,
        :base + i * 10 AS created
    FROM n
)
INSERT INTO durable_task_executions (
    root_task_id, root_execution_id, parent_task_id, parent_execution_id, is_finalize_task,
    task_id, execution_id, retry_options, sleep_ms_before_run, timeout_ms, run_input, output,
    children_tasks_completed_count, error, status, is_closed, needs_promise_cancellation,
    retry_attempts, start_at, started_at, finished_at, expires_at, version, created_at,
    updated_at)
SELECT
    CASE WHEN i % 10 = 5 THEN 'task_' || ((i - 1) % 20) END,
    CASE WHEN i % 10 = 5 THEN 'te_' || printf('%024d', i - 1) END,
    CASE WHEN i % 10 = 5 THEN 'task_' || ((i - 1) % 20) END,
    CASE WHEN i % 10 = 5 THEN 'te_' || printf('%024d', i - 1) END,
    CASE WHEN i % 10 = 5 THEN 0 END,
    'task_' || (i % 20), 'te_' || printf('%024d', i),
    '{"max_attempts":0,"base_delay_ms":0,"delay_multiplier":1.0}', 0, 5000,
    '{"order":' || i || ',"note":"bench row"}',
    CASE WHEN status = 'completed' THEN '"done"' END, 0,
    CASE WHEN status = 'failed' THEN '{"error_type":"generic","message":"ValueError: row '
        || i || '","is_retryable":false,"is_internal":false}' END,
    status, status NOT IN ('ready', 'running'), 0, 0, created,
    CASE WHEN status <> 'ready' THEN created + 5 END,
    CASE WHEN status NOT IN ('ready', 'running') THEN created + 50 END,
    CASE WHEN status = 'running' THEN created + 300000 END,
    1, created, created + 50
FROM shaped
"""

_POSTGRES_FILL: Final = """
WITH shaped AS (
    SELECT i,
        CASE WHEN i %% 100 IN (0, 1) THEN 'failed' WHEN i %% 100 = 2 THEN 'ready'
             WHEN i %% 100 = 3 THEN 'running' WHEN i %% 100 = 4 THEN 'cancelled'
             ELSE 'completed' END AS status,
        now() - interval '1 day' + i * interval '10 milliseconds' AS created
    FROM generate_series(1, %(rows)s) AS i
)
INSERT INTO durable_task_executions (
    root_task_id, root_execution_id, parent_task_id, parent_execution_id, is_finalize_task,
    task_id, execution_id, retry_options, sleep_ms_before_run, timeout_ms, run_input, output,
    children_tasks_completed_count, error, status, is_closed, needs_promise_cancellation,
    retry_attempts, start_at, started_at, finished_at, expires_at, version, created_at,
    updated_at)
SELECT
    CASE WHEN i %% 10 = 5 THEN 'task_' || ((i - 1) %% 20) END,
    CASE WHEN i %% 10 = 5 THEN 'te_' || lpad((i - 1)::text, 24, '0') END,
    CASE WHEN i %% 10 = 5 THEN 'task_' || ((i - 1) %% 20) END,
    CASE WHEN i %% 10 = 5 THEN 'te_' || lpad((i - 1)::text, 24, '0') END,
    CASE WHEN i %% 10 = 5 THEN false END,
    'task_' || (i %% 20), 'te_' || lpad(i::text, 24, '0'),
    '{"max_attempts":0,"base_delay_ms":0,"delay_multiplier":1.0}', 0, 5000,
    '{"order":' || i || ',"note":"bench row"}',
    CASE WHEN status = 'completed' THEN '"done"' END, 0,
    CASE WHEN status = 'failed' THEN jsonb_build_object('error_type', 'generic', 'message',
        'ValueError: row ' || i, 'is_retryable', false, 'is_internal', false) END,
    status, status NOT IN ('ready', 'running'), false, 0, created,
    CASE WHEN status <> 'ready' THEN created + interval '5 ms' END,
    CASE WHEN status NOT IN ('ready', 'running') THEN created + interval '50 ms' END,
    CASE WHEN status = 'running' THEN created + interval '5 minutes' END,
    1, created, created + interval '50 ms'
FROM shaped
"""

Scope = MutableMapping[str, Any]  # Any: ASGI messages are loosely typed dicts by definition
Asgi = Callable[
    [Scope, Callable[[], Awaitable[Scope]], Callable[[Scope], Awaitable[None]]], Awaitable[None]
]


async def _migrate(url: str) -> None:
    async with open_storage(url, migrate=True):
        pass


def fill_sqlite(path: Path, rows: int) -> str:
    url = f"sqlite:///{path}"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    asyncio.run(_migrate(url))
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    with conn:
        conn.execute(_SQLITE_FILL, {"rows": rows, "base": int(time.time() * 1000) - 86_400_000})
    conn.execute("ANALYZE")
    conn.close()
    return url


def fill_postgres(admin_url: str, rows: int) -> str:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {BENCH_DATABASE}")
    url = admin_url.rsplit("/", 1)[0] + f"/{BENCH_DATABASE}"
    asyncio.run(_migrate(url))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_POSTGRES_FILL, {"rows": rows})
        conn.execute("VACUUM ANALYZE durable_task_executions")
    return url


class _Client:
    """Drives an ASGI application in-process: its lifespan, then one GET at a time."""

    def __init__(self, app: Asgi) -> None:
        self.app = app
        self._lifespan: asyncio.Queue[Scope] = asyncio.Queue()
        self._events: asyncio.Queue[Scope] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        async def receive() -> Scope:
            return await self._lifespan.get()

        async def send(message: Scope) -> None:
            await self._events.put(message)

        scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}

        async def run() -> None:
            await self.app(scope, receive, send)

        self._task = asyncio.create_task(run())
        await self._lifespan.put({"type": "lifespan.startup"})
        started = await self._events.get()
        if started["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"the dashboard did not start: {started}")

    async def stop(self) -> None:
        await self._lifespan.put({"type": "lifespan.shutdown"})
        await self._events.get()
        if self._task is not None:
            await self._task

    async def get(self, path: str) -> tuple[int, str]:
        target, _, query = path.partition("?")
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": target,
            "raw_path": target.encode(),
            "query_string": query.encode(),
            "headers": [(b"host", b"bench"), (b"accept", b"text/html")],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
            "state": {},
        }
        status, chunks = 0, []

        async def receive() -> Scope:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Scope) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks).decode()


async def _timed(client: _Client, path: str, repeat: int) -> tuple[float, float]:
    timings = []
    for _ in range(repeat):
        began = time.perf_counter()
        status, body = await client.get(path)
        timings.append((time.perf_counter() - began) * 1000)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}: {body[:500]}")
    return statistics.median(timings), max(timings)


Result = tuple[str, tuple[float, float], tuple[float, float] | None]


async def measure(url: str, rows: int, repeat: int) -> list[Result]:
    """Per filter: the list page's (median, max) ms and its counts fragment's, if it has one."""
    app = create_app(Settings(db_url=url, table=TABLE, db_shown="bench"))
    client = _Client(app)
    await client.start()
    middle = f"te_{rows // 2:024d}"
    lists = [
        ("no filter", ""),
        ("status=failed", "status=failed"),
        ("status=ready", "status=ready"),
        ("task=task_7", "task=task_7"),
        ("top-level only", "top=1"),
        ("deep page (cursor at row n/2)", f"before={middle}"),
        ("created in the first hour", "to=" + _first_hour()),
    ]
    results: list[Result] = []
    try:
        for name, query in lists:
            page = await _timed(client, f"/?{query}", repeat)
            counts = await _timed(client, f"/fragments/summary?{query}", repeat)
            results.append((name, page, counts))
        results.append(
            ("refresh fragment", await _timed(client, "/fragments/executions", repeat), None)
        )
        results.append(
            ("execution page", await _timed(client, f"/executions/{middle}", repeat), None)
        )
    finally:
        await client.stop()
    return results


def _first_hour() -> str:
    """An upper bound one hour after the first row (rows start a day ago): a range the list
    must walk most of the table backwards to reach."""
    hours_ago = 23
    moment = time.gmtime(time.time() - hours_ago * 3600)
    return time.strftime("%Y-%m-%dT%H:%M:%S", moment)


def report(backend: str, rows: int, fill_s: float | None, results: list[Result]) -> None:
    filled = "" if fill_s is None else f" (filled in {fill_s:.1f} s)"
    print(f"\n{backend}: {rows:,} rows{filled}; median / max ms over the runs")
    print(f"  {'':<32} {'list page':>17}   {'status counts fragment':>22}")
    for name, (median, worst), counts in results:
        mark = "" if median < GOAL_MS else "  (page over the goal)"
        shown = "" if counts is None else f"{counts[0]:9.1f} / {counts[1]:7.1f}"
        print(f"  {name:<32} {median:8.1f} / {worst:7.1f}   {shown:>22}{mark}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--sqlite", type=Path, default=Path(DEFAULT_SQLITE))
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="a URL that may create DBs")
    parser.add_argument("--reuse", action="store_true", help="measure the tables already filled")
    args = parser.parse_args()
    if args.only in (None, "sqlite"):
        began = time.perf_counter()
        url = f"sqlite:///{args.sqlite}" if args.reuse else fill_sqlite(args.sqlite, args.rows)
        filled = None if args.reuse else time.perf_counter() - began
        report("SQLite", args.rows, filled, asyncio.run(measure(url, args.rows, args.repeat)))
    if args.only in (None, "postgresql"):
        began = time.perf_counter()
        if args.reuse:
            url = args.postgres.rsplit("/", 1)[0] + f"/{BENCH_DATABASE}"
        else:
            url = fill_postgres(args.postgres, args.rows)
        filled = None if args.reuse else time.perf_counter() - began
        report("PostgreSQL", args.rows, filled, asyncio.run(measure(url, args.rows, args.repeat)))


if __name__ == "__main__":
    main()
