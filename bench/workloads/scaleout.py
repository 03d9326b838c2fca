"""W6 scale-out: P worker *processes* share N queued tasks that each sleep 5 ms; tasks/s per P.

The coordinator (this module, in the harness process) enqueues all N tasks first with an
executor that is never started, then starts P workers (:mod:`bench.workloads.scaleout_worker`),
waits until each has opened its storage and reported ready, tells them all to go and times how
long the queue takes to drain. Progress is watched with a cheap indexed count over plain driver
connections, so that the coordinator adds as little load as it can.

Runs on PostgreSQL (the scale-out backend) and on SQLite (several processes on one file are a
supported set-up too, so its curve is worth knowing); not in memory, which no process shares.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack, closing
from functools import partial
from typing import Any, Final, LiteralString

import psycopg
from psycopg.rows import TupleRow

from bench.cases import (
    Case,
    JsonValue,
    Sample,
    SampleContext,
    Scale,
    WorkloadFailedError,
    run_async,
)
from bench.figures import Metric
from bench.storage import open_bench_storage
from bench.subprocesses import child_process
from bench.targets import Target
from bench.workloads._common import echo
from bench.workloads.scaleout_probe import WaitSampler, summarise_claims, summarise_waits
from durable_execution import DurableExecutor

SLEEP_TASK_ID: Final = "bench_sleep"
TASK_SLEEP_S: Final = 0.005
TASK_TIMEOUT_MS: Final = 60_000
TABLE: Final = "durable_task_executions"
POLL_S: Final = 0.02
# Process start-up, imports and opening the storage; generous for a loaded two-core machine.
READY_TIMEOUT_S: Final = 60.0

TASKS_PER_S: Final = Metric(
    "tasks_per_s", "tasks/s", True, "queued tasks completed per second by all processes"
)
CLOSED_PER_S: Final = Metric(
    "closed_per_s", "tasks/s", True, "tasks per second until the last one was also closed"
)


def cases(scale: Scale) -> list[Case]:
    processes = (1, 2) if scale.smoke else (1, 2, 4)
    return [
        Case(
            workload="W6",
            name=f"W6 scale-out processes={count} n={n}",
            params={"n": n, "processes": count, "task_sleep_ms": int(TASK_SLEEP_S * 1000)},
            metrics=(TASKS_PER_S, CLOSED_PER_S),
            backends=("postgresql", "sqlite"),
            measure=partial(measure, n=n, processes=count),
        )
        for n in scale.sizes(full=(10_000,), smoke=200)
        for count in processes
    ]


def measure(context: SampleContext, n: int, processes: int) -> Sample:
    target = context.target
    deadline = time.monotonic() + context.timeout_s
    run_async(lambda: _enqueue(target.url, n), context.timeout_s)
    with ExitStack() as stack:
        workers = [
            stack.enter_context(
                child_process("bench.workloads.scaleout_worker", ["--url", target.url], stdin=True)
            )
            for _ in range(processes)
        ]
        for worker in workers:
            _expect_line(worker, "ready", time.monotonic() + READY_TIMEOUT_S)
        progress = stack.enter_context(closing(_Progress(target)))
        sampler = (
            stack.enter_context(WaitSampler(target.postgres_conninfo))
            if target.postgres_conninfo is not None
            else None
        )
        started = time.perf_counter()
        for worker in workers:
            _send(worker, "go")
        completed_at = _wait_for(lambda: progress.active() == 0, deadline, "finish") - started
        closed_at = _wait_for(lambda: progress.unclosed() == 0, deadline, "close") - started
        for worker in workers:
            _send(worker, "stop")
        reports = [_final_report(worker, deadline) for worker in workers]
        completed = progress.completed()
    if completed != n:
        raise WorkloadFailedError(f"W6: {completed} of {n} tasks completed")
    claims = [report["claims"] for report in reports]
    _progress(f"W6 processes={processes}: {summarise_claims(claims)}")
    info: dict[str, JsonValue] = {
        "runs_per_process": [report["runs"] for report in reports],
        "claims_per_process": claims,
    }
    if sampler is not None:
        waits = sampler.report()
        _progress(f"W6 processes={processes}: active server time {summarise_waits(waits)}")
        info["postgres_waits"] = waits
    return Sample({TASKS_PER_S.key: n / completed_at, CLOSED_PER_S.key: n / closed_at}, info=info)


async def _enqueue(url: str, n: int) -> None:
    async with open_bench_storage(url) as storage:
        # Never started: it only inserts. The workers register the real (sleeping) task.
        executor = DurableExecutor(storage)
        task = executor.task(id=SLEEP_TASK_ID, timeout_ms=TASK_TIMEOUT_MS, run=echo)
        await asyncio.gather(*(executor.enqueue_task(task, i) for i in range(n)))
        await executor.shutdown()


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)  # the harness's progress stream, like W7's


def _send(worker: subprocess.Popen[str], line: str) -> None:
    assert worker.stdin is not None  # spawned with stdin=PIPE
    worker.stdin.write(line + "\n")
    worker.stdin.flush()


def _read_line(worker: subprocess.Popen[str], deadline: float) -> str:
    """The worker's next output line, or an error if it died or the deadline passed."""
    assert worker.stdout is not None  # spawned with stdout=PIPE
    result: list[str] = []

    def read() -> None:
        assert worker.stdout is not None
        result.append(worker.stdout.readline())

    # readline() cannot time out on a pipe; a helper thread lets us stop waiting for a hung
    # worker (which the caller then kills, ending the read).
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(max(0.0, deadline - time.monotonic()))
    if not result:
        raise TimeoutError(f"W6 worker {worker.pid} said nothing before the deadline")
    if not result[0]:
        raise WorkloadFailedError(f"W6 worker {worker.pid} exited with code {worker.wait()}")
    return result[0].strip()


def _expect_line(worker: subprocess.Popen[str], expected: str, deadline: float) -> None:
    line = _read_line(worker, deadline)
    if line != expected:
        raise WorkloadFailedError(f"W6 worker {worker.pid} said {line!r}, expected {expected!r}")


def _final_report(worker: subprocess.Popen[str], deadline: float) -> dict[str, Any]:
    """The worker's last line: its runs and its claims (see scaleout_worker)."""
    report: dict[str, Any] = json.loads(_read_line(worker, deadline))
    code = worker.wait(max(0.0, deadline - time.monotonic()))
    if code != 0:
        raise WorkloadFailedError(f"W6 worker {worker.pid} exited with code {code}")
    return report


def _wait_for(condition: Callable[[], bool], deadline: float, what: str) -> float:
    """Poll ``condition`` until true; return the ``perf_counter`` time at which it was seen."""
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"W6: the queue did not {what} before the deadline")
        time.sleep(POLL_S)
    return time.perf_counter()


# Indexed counts: executions not finished yet, and completed ones not closed yet.
_ACTIVE_SQL: Final = f"SELECT count(*) FROM {TABLE} WHERE status IN ('ready', 'running')"
_UNCLOSED_SQLITE: Final = (
    f"SELECT count(*) FROM {TABLE} WHERE status = 'completed' AND is_closed = 0"
)
_UNCLOSED_POSTGRES: Final = (
    f"SELECT count(*) FROM {TABLE} WHERE status = 'completed' AND NOT is_closed"
)
_COMPLETED_SQL: Final = f"SELECT count(*) FROM {TABLE} WHERE status = 'completed'"


class _Progress:
    """Counts over a connection of its own: ``active()`` and ``unclosed()``, then ``close()``."""

    def __init__(self, target: Target) -> None:
        self._sqlite: sqlite3.Connection | None = None
        self._postgres: psycopg.Connection[TupleRow] | None = None
        if target.sqlite_path is not None:
            self._sqlite = sqlite3.connect(target.sqlite_path, timeout=30, isolation_level=None)
        elif target.postgres_conninfo is not None:
            self._postgres = psycopg.connect(target.postgres_conninfo, autocommit=True)
        else:
            raise ValueError(f"W6 needs a shared SQL backend, not {target.backend}")

    def _count(self, sqlite_sql: str, postgres_sql: LiteralString) -> int:
        if self._sqlite is not None:
            return _one(self._sqlite.execute(sqlite_sql).fetchone())
        assert self._postgres is not None  # one of the two is set by __init__
        return _one(self._postgres.execute(postgres_sql).fetchone())

    def active(self) -> int:
        return self._count(_ACTIVE_SQL, _ACTIVE_SQL)

    def unclosed(self) -> int:
        return self._count(_UNCLOSED_SQLITE, _UNCLOSED_POSTGRES)

    def completed(self) -> int:
        return self._count(_COMPLETED_SQL, _COMPLETED_SQL)

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._postgres is not None:
            self._postgres.close()


def _one(row: Sequence[object] | None) -> int:
    if row is None or not isinstance(row[0], int):
        raise WorkloadFailedError(f"W6: a count query returned {row!r}")
    return row[0]
