"""W8 sync enqueue: what one ``SyncClient.enqueue_task`` costs, against the old workaround.

Three figures per SQL backend:

* ``enqueue_p50_ms`` / ``enqueue_p95_ms`` / ``enqueue_mean_ms``: one thread, one client, ``N``
  enqueues one after the other, each timed (each commits before returning: on SQLite with the
  default ``synchronous=FULL`` that includes the WAL fsync);
* ``threads_per_s``: 8 threads sharing the client, enqueuing as fast as they can (a web server's
  worker threads);
* ``asyncio_run_ms``: the workaround the client replaces, one ``asyncio.run`` per enqueue that
  opens the storage, enqueues through a never-started executor and closes it again (fewer
  samples: it is slow);
* ``floor_ms``: the plain driver committing one one-row insert into a scratch table of the same
  database, same settings: what a durable commit costs on this machine (on SQLite with FULL,
  mostly the fsync), so the client's own share is the difference.

Every execution enqueued is read back afterwards, so a lost or mangled enqueue fails the case.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import threading
import time
from functools import partial
from typing import Final

import psycopg

from bench.cases import Case, Sample, SampleContext, Scale, WorkloadFailedError
from bench.figures import Metric, percentile
from bench.storage import open_bench_storage
from bench.targets import Target
from bench.workloads._common import TASK_TIMEOUT_MS, echo
from durable_execution import DurableExecutor, InMemoryStorage, SyncClient, Task

P50: Final = Metric("enqueue_p50_ms", "ms", False, "median SyncClient.enqueue_task")
P95: Final = Metric("enqueue_p95_ms", "ms", False, "95th percentile SyncClient.enqueue_task")
MEAN: Final = Metric("enqueue_mean_ms", "ms", False, "mean SyncClient.enqueue_task")
THREADS: Final = Metric("threads_per_s", "/s", True, "enqueues/s, 8 threads sharing a client")
WORKAROUND: Final = Metric("asyncio_run_ms", "ms", False, "asyncio.run(open + enqueue) each")
FLOOR: Final = Metric("floor_ms", "ms", False, "plain driver: one-row insert + commit")

WARM_UP: Final = 20
THREAD_COUNT: Final = 8


def cases(scale: Scale) -> list[Case]:
    return [
        Case(
            workload="W8",
            name=f"W8 sync enqueue n={n}",
            params={"n": n},
            metrics=(P50, P95, MEAN, THREADS, WORKAROUND, FLOOR),
            backends=("sqlite", "postgresql"),
            measure=partial(measure, n=n),
        )
        for n in scale.sizes(full=(1000,), smoke=20)
    ]


def _task() -> Task[int, int]:
    # Registered on an executor that is never started, as a web app does.
    return DurableExecutor(InMemoryStorage()).task(
        id="bench_echo", timeout_ms=TASK_TIMEOUT_MS, run=echo
    )


def measure(context: SampleContext, n: int) -> Sample:
    url = context.target.url
    task = _task()
    ids: list[str] = []
    with SyncClient(url) as client:
        for index in range(WARM_UP):
            ids.append(client.enqueue_task(task, index).execution_id)
        single_ms: list[float] = []
        for index in range(n):
            started = time.perf_counter()
            handle = client.enqueue_task(task, index)
            single_ms.append((time.perf_counter() - started) * 1000)
            ids.append(handle.execution_id)
        per_s, threaded_ids = _threaded(client, task, n)
        ids += threaded_ids
        if len(set(ids)) != len(ids):
            raise WorkloadFailedError("W8: an execution id came back twice")
        for execution_id in ids[:: max(1, len(ids) // 100)]:
            if client.get_execution(execution_id).status != "ready":
                raise WorkloadFailedError(f"W8: {execution_id} is not stored ready")
    workaround_ms = _workaround(url, task, max(3, n // 20))
    floor_ms = _floor(context.target, n)
    return Sample(
        {
            P50.key: percentile(single_ms, 50),
            P95.key: percentile(single_ms, 95),
            MEAN.key: statistics.fmean(single_ms),
            THREADS.key: per_s,
            WORKAROUND.key: statistics.fmean(workaround_ms),
            FLOOR.key: statistics.fmean(floor_ms),
        },
        info={"enqueued": len(ids), "workaround_samples": len(workaround_ms)},
    )


def _threaded(client: SyncClient, task: Task[int, int], n: int) -> tuple[float, list[str]]:
    per_thread = max(1, n // THREAD_COUNT)
    ids: list[list[str]] = [[] for _ in range(THREAD_COUNT)]
    errors: list[BaseException] = []
    start = threading.Barrier(THREAD_COUNT + 1)

    def enqueue(slot: int) -> None:
        start.wait()
        try:
            for index in range(per_thread):
                ids[slot].append(client.enqueue_task(task, index).execution_id)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=enqueue, args=(slot,)) for slot in range(THREAD_COUNT)]
    for thread in threads:
        thread.start()
    start.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed_s = time.perf_counter() - started
    if errors:
        raise WorkloadFailedError(f"W8: a thread failed: {errors[0]!r}")
    return THREAD_COUNT * per_thread / elapsed_s, [i for chunk in ids for i in chunk]


def _workaround(url: str, task: Task[int, int], samples: int) -> list[float]:
    """The ``asyncio.run`` per enqueue that synchronous code had to write before SyncClient."""

    async def enqueue_once(value: int) -> None:
        async with open_bench_storage(url) as storage:
            executor = DurableExecutor(storage)
            executor.task(id=task.id, timeout_ms=TASK_TIMEOUT_MS, run=echo)
            await executor.enqueue_task(task, value)

    elapsed_ms: list[float] = []
    for index in range(samples):
        started = time.perf_counter()
        asyncio.run(enqueue_once(index))
        elapsed_ms.append((time.perf_counter() - started) * 1000)
    return elapsed_ms


def _floor(target: Target, n: int) -> list[float]:
    """One-row inserts committed one by one through the plain driver (see the module doc)."""
    elapsed_ms: list[float] = []
    if target.sqlite_path is not None:
        conn = sqlite3.connect(target.sqlite_path, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            # One of two constant statements, as the storage does.
            if target.sqlite_synchronous == "normal":
                conn.execute("PRAGMA synchronous = NORMAL")
            else:
                conn.execute("PRAGMA synchronous = FULL")
            conn.execute("CREATE TABLE floor_probe (id INTEGER PRIMARY KEY, v TEXT)")
            for index in range(n):
                started = time.perf_counter()
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO floor_probe (v) VALUES (?)", (str(index),))
                conn.execute("COMMIT")
                elapsed_ms.append((time.perf_counter() - started) * 1000)
        finally:
            conn.close()
        return elapsed_ms
    assert target.postgres_conninfo is not None
    with psycopg.connect(target.postgres_conninfo, autocommit=True) as pg_conn:
        pg_conn.execute("CREATE TABLE floor_probe (id bigserial PRIMARY KEY, v text)")
        for index in range(n):
            started = time.perf_counter()
            with pg_conn.transaction():
                pg_conn.execute("INSERT INTO floor_probe (v) VALUES (%s)", (str(index),))
            elapsed_ms.append((time.perf_counter() - started) * 1000)
    return elapsed_ms
