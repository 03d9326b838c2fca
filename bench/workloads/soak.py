"""W7 soak: a million executions through enqueue → run → close → prune, with retention on.

A database that lives for years must not slow down as it ages: the claim must stay an index
scan over ready rows, and retention must keep the table (and its dead tuples) bounded. The
executor runs with ``retention=2 s`` (its automatic pruning loop then runs about every
second), and trivial tasks stream through it in batches, two batches in flight. Only closed
trees can be pruned, and closing runs behind the handles' results, so a lane waits before its
next batch until at most :data:`CLOSE_BACKLOG` finished executions are still unclosed: the
throughput is that of the whole enqueue → run → close path, and the table stays bounded by
what retention and the backlog allow, not by how far closing fell behind.

On a PostgreSQL server whose ``autovacuum`` is off (test servers often are), the harness runs
``VACUUM`` on the table after each window instead — about what autovacuum with the table's
thresholds (migration 0004) would do within its one-minute nap — and says so in the details.

Every ``window`` executions (100,000 at full size) the sample records one point of the curve:

* the claim statement's latency, p50 and p99, over that window (timed around the storage
  transaction's ``claim_ready_task_executions``; the executor's claim loop calls nothing else);
* W1-style throughput over the window (executions finished per second);
* the table's size with its indexes and its bloat: PostgreSQL ``pg_total_relation_size``,
  ``n_live_tup`` and ``n_dead_tup``; SQLite ``page_count * page_size`` and ``freelist_count``;
  and the rows still stored (the retention's backlog).

The headline figures are the last window's; the whole curve is in the sample's details
(``--json``). The target: flat claim latency and a bounded size.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import partial
from typing import Any, Final

import psycopg

from bench.cases import Case, JsonValue, Sample, SampleContext, Scale, run_async
from bench.figures import Metric, percentile
from bench.storage import open_bench_storage
from bench.targets import Target
from bench.workloads._common import TASK_TIMEOUT_MS, echo, expect_outputs
from durable_execution import DurableExecutor, DurableStorage

RETENTION: Final = timedelta(seconds=2)
FULL_WINDOW: Final = 100_000
CHUNK: Final = 1_000  # executions per enqueue_tasks call
IN_FLIGHT: Final = 2  # chunks enqueued and awaited at once
CLOSE_BACKLOG: Final = 2 * CHUNK
TABLE: Final = "durable_task_executions"

TASKS_PER_S: Final = Metric(
    "tasks_per_s", "tasks/s", True, "executions finished per second over the whole soak"
)
CLAIM_P50: Final = Metric("claim_p50_ms", "ms", False, "claim statement p50, last window")
CLAIM_P99: Final = Metric("claim_p99_ms", "ms", False, "claim statement p99, last window")
SIZE_MIB: Final = Metric(
    "table_mib", "MiB", False, "table + indexes at the end (the retention keeps it bounded)"
)


def cases(scale: Scale) -> list[Case]:
    return [
        Case(
            workload="W7",
            name=f"W7 soak n={n}",
            params={"n": n, "retention_s": int(RETENTION.total_seconds())},
            metrics=(TASKS_PER_S, CLAIM_P50, CLAIM_P99, SIZE_MIB),
            backends=("sqlite", "postgresql"),
            measure=partial(measure, n=n),
        )
        for n in scale.sizes(full=(1_000_000,), smoke=2_000)
    ]


def measure(context: SampleContext, n: int) -> Sample:
    return run_async(lambda: _run(context.target, n), context.timeout_s)


class _ClaimTimer:
    """Times every call of the storage transaction's claim method while installed."""

    def __init__(self) -> None:
        self.durations_ms: list[float] = []

    @contextmanager
    def installed(self, tx_class: type[Any]) -> Iterator[None]:
        # Any: the claim method of whichever transaction class the backend uses.
        original: Callable[..., Awaitable[Any]] = tx_class.claim_ready_task_executions
        durations = self.durations_ms

        async def timed(self: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(self, **kwargs)
            finally:
                durations.append((time.perf_counter() - started) * 1000)

        tx_class.claim_ready_task_executions = timed
        try:
            yield
        finally:
            tx_class.claim_ready_task_executions = original

    def take(self) -> list[float]:
        taken, self.durations_ms[:] = list(self.durations_ms), []
        return taken


async def _tx_class(storage: DurableStorage) -> type[Any]:
    async with storage.transaction() as tx:
        return type(tx)  # every transaction has the set-based claim (DurableStorageTx)


def _table_facts(target: Target) -> dict[str, float]:
    if target.sqlite_path is not None:
        conn = sqlite3.connect(target.sqlite_path)
        with conn:
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            free = conn.execute("PRAGMA freelist_count").fetchone()[0]
            rows = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
        conn.close()
        return {
            "size_mib": pages * page_size / 2**20,
            "freelist_pages": free,
            "rows": rows,
        }
    assert target.postgres_conninfo is not None
    with psycopg.connect(target.postgres_conninfo, autocommit=True) as pg:
        row = pg.execute(
            "SELECT pg_total_relation_size(c.oid), s.n_live_tup, s.n_dead_tup,"
            " (SELECT count(*) FROM " + TABLE + "), s.autovacuum_count"
            " FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid"
            " WHERE c.relname = %s",
            (TABLE,),
        ).fetchone()
    assert row is not None
    return {
        "size_mib": row[0] / 2**20,
        "live_tuples": row[1],
        "dead_tuples": row[2],
        "rows": row[3],
        "autovacuums": row[4],
    }


async def _wait_for_closing(storage: DurableStorage) -> None:
    """Return once fewer than CLOSE_BACKLOG finished executions wait to be closed."""
    while True:
        async with storage.transaction() as tx:
            unclosed = await tx.get_finished_unclosed_task_execution_ids(limit=CLOSE_BACKLOG)
        if len(unclosed) < CLOSE_BACKLOG:
            return
        await asyncio.sleep(0.01)


def _autovacuum_off(target: Target) -> bool:
    if target.postgres_conninfo is None:
        return False
    with psycopg.connect(target.postgres_conninfo, autocommit=True) as pg:
        row = pg.execute("SHOW autovacuum").fetchone()
    return row is not None and row[0] == "off"


def _vacuum(target: Target) -> None:
    assert target.postgres_conninfo is not None
    with psycopg.connect(target.postgres_conninfo, autocommit=True) as pg:
        pg.execute("VACUUM " + TABLE)


async def _run(target: Target, n: int) -> Sample:
    window = FULL_WINDOW if n >= 10 * FULL_WINDOW else max(n // 10, 1)
    timer = _ClaimTimer()
    vacuum_by_harness = await asyncio.to_thread(_autovacuum_off, target)
    curve: list[dict[str, JsonValue]] = []
    last = (0.0, 0.0, 0.0)  # the last window's claim p50, p99 (ms) and size (MiB)
    async with open_bench_storage(target.url) as storage:
        executor = DurableExecutor(storage, retention=RETENTION)
        task = executor.task(id="bench_echo", timeout_ms=TASK_TIMEOUT_MS, run=echo)
        with timer.installed(await _tx_class(storage)):
            async with executor:
                started = time.perf_counter()
                done = 0
                while done < n:
                    size = min(window, n - done)
                    window_started = time.perf_counter()
                    queue = list(range(0, size, CHUNK))

                    async def drain(size: int = size, queue: list[int] = queue) -> None:
                        while queue:
                            first = queue.pop(0)
                            values = range(first, min(first + CHUNK, size))
                            handles = await executor.enqueue_tasks(task, values)
                            executions = await asyncio.gather(
                                *(h.wait_and_get_finished_execution() for h in handles)
                            )
                            expect_outputs(executions, values, "W7")
                            await _wait_for_closing(storage)

                    await asyncio.gather(*(drain() for _ in range(IN_FLIGHT)))
                    elapsed = time.perf_counter() - window_started
                    done += size
                    claims = timer.take()
                    facts = await asyncio.to_thread(_table_facts, target)
                    if vacuum_by_harness:
                        # Measured before: the point shows what accumulated over the window.
                        await asyncio.to_thread(_vacuum, target)
                    last = (
                        percentile(claims, 50) if claims else 0.0,
                        percentile(claims, 99) if claims else 0.0,
                        float(facts["size_mib"]),
                    )
                    point: dict[str, JsonValue] = {
                        "executions": done,
                        "tasks_per_s": size / elapsed,
                        "claim_p50_ms": last[0],
                        "claim_p99_ms": last[1],
                        "claims": len(claims),
                        **facts,
                    }
                    curve.append(point)
                    print(f"W7 {target.backend} {point}", file=sys.stderr, flush=True)
                finished = time.perf_counter()
    return Sample(
        {
            TASKS_PER_S.key: n / (finished - started),
            CLAIM_P50.key: last[0],
            CLAIM_P99.key: last[1],
            SIZE_MIB.key: last[2],
        },
        info={"window": window, "vacuum_by_harness": vacuum_by_harness, "curve": curve},
    )
