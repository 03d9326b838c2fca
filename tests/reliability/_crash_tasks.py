"""The tasks of the worker-process tests and the side store that counts their runs.

Worker subprocesses (``_worker_main.py``) and the test process register the same tasks, so that the
test can enqueue them and the workers can run them. Every run writes a row to a SQLite side file
*before* doing anything else, from whichever process runs it, so the test counts runs (and the
runs a SIGKILL interrupted) independently of the storage under test.

Side tables:

* ``runs``: one row per run, keyed by a random token; ``prev_error`` is the message the run saw.
* ``unique_runs``: the unique key (``execution_id``, ``attempt``). A run whose key exists is
  recorded in ``duplicates`` instead: absent crashes it must stay empty (a re-run after a lease
  expiry keeps its ``attempt``, so crash tests expect exactly those re-runs there).
* ``events``: free-form markers a task writes at interesting points (``stale_returned``, …).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from durable_execution import (
    ChildTask,
    DurableExecutor,
    FinalizeTask,
    FinalizeTaskInput,
    ParentTaskResult,
    Task,
    TaskContext,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    token TEXT PRIMARY KEY,
    execution_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    prev_error TEXT,
    pid INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS unique_runs (
    execution_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    PRIMARY KEY (execution_id, attempt)
);
CREATE TABLE IF NOT EXISTS duplicates (execution_id TEXT NOT NULL, attempt INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (execution_id TEXT NOT NULL, kind TEXT NOT NULL, pid INTEGER);
"""

# Long enough that only a kill (or the test's gate) ends it.
HANG_S = 3600.0


class SideStore:
    """The side file, shared by every process of a test. Thread-safe: sync runs use threads."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        # Autocommit: a row is durable once the call returns, even if the process is then killed.
        self._conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=60.0
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)

    def record_run(self, ctx: TaskContext) -> None:
        prev = None if ctx.prev_error is None else ctx.prev_error.message
        row = (secrets.token_hex(8), ctx.execution_id, ctx.task_id, ctx.attempt, prev, os.getpid())
        with self._lock:
            # One transaction: a kill right after this call never leaves half a record.
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?)", row)
                key = (ctx.execution_id, ctx.attempt)
                fresh = self._conn.execute("INSERT OR IGNORE INTO unique_runs VALUES (?, ?)", key)
                if fresh.rowcount == 0:
                    self._conn.execute("INSERT INTO duplicates VALUES (?, ?)", key)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def event(self, execution_id: str, kind: str) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO events VALUES (?, ?, ?)", (execution_id, kind, os.getpid())
            )

    def close(self) -> None:
        self._conn.close()


@dataclass(frozen=True)
class ATasks:
    hang_once: Task[str, str]
    hang_hour: Task[str, str]
    sleep_hour: Task[float, str]
    crash_always: Task[str, str]
    stale_once: Task[str, str]
    simple: Task[int, int]
    leaf: Task[dict[str, int], int]
    tree: Task[dict[str, int], dict[str, int]]


def register_tasks(executor: DurableExecutor, side: SideStore, gate: Path | None) -> ATasks:
    """Register every such task on ``executor``; ``gate`` releases ``stale_once``'s first run."""

    async def hang_once(ctx: TaskContext, key: str) -> str:
        side.record_run(ctx)
        if ctx.prev_error is None:
            await asyncio.sleep(HANG_S)  # the test SIGKILLs this process meanwhile
        return f"recovered {key}"

    async def sleep_for(ctx: TaskContext, seconds: float) -> str:
        side.record_run(ctx)
        await asyncio.sleep(seconds)
        return f"slept {seconds}"

    def crash_always(ctx: TaskContext, key: str) -> str:
        side.record_run(ctx)
        os.kill(os.getpid(), signal.SIGKILL)  # a task that takes its process down every time
        return key  # pragma: no cover - never reached

    def stale_once(ctx: TaskContext, key: str) -> str:
        # Sync on purpose: a thread cannot be cancelled, so this run really returns its result
        # after the lease expired and a newer attempt completed.
        side.record_run(ctx)
        if ctx.prev_error is not None:
            return f"fresh {key}"
        assert gate is not None, "stale_once needs a gate file"
        while not gate.exists():
            time.sleep(0.01)
        side.event(ctx.execution_id, "stale_returned")
        return f"stale {key}"

    async def simple(ctx: TaskContext, value: int) -> int:
        side.record_run(ctx)
        await asyncio.sleep(0)
        return value * 2

    async def leaf(ctx: TaskContext, spec: dict[str, int]) -> int:
        side.record_run(ctx)
        if spec.get("hang") and ctx.prev_error is None:
            await asyncio.sleep(HANG_S)
        await asyncio.sleep(spec.get("sleep_ms", 0) / 1000)
        return spec["i"] * 10

    simple_task = executor.task(id="a_simple", timeout_ms=30_000, run=simple)
    leaf_task = executor.task(id="a_leaf", timeout_ms=1500, run=leaf)

    def run_tree(ctx: TaskContext, spec: dict[str, int]) -> ParentTaskResult[int]:
        side.record_run(ctx)
        if spec.get("parent_sleep_ms") and ctx.prev_error is None:
            # A window for the test to block the write that stores this result and inserts the
            # children (a row lock, a SQLite write lock) before it kills this process.
            time.sleep(spec["parent_sleep_ms"] / 1000)
            side.event(ctx.execution_id, "parent_returning")
        children = [
            ChildTask(
                leaf_task,
                {"i": i, "hang": int(spec.get("hang", 0) and i == 0), "sleep_ms": spec["sleep_ms"]},
            )
            for i in range(spec["n"])
        ]
        return ParentTaskResult(output=spec["n"], children_tasks=children)

    async def finalize(
        ctx: TaskContext, done: FinalizeTaskInput[dict[str, int], int]
    ) -> dict[str, int]:
        side.record_run(ctx)
        outputs = [child.output for child in done.children_tasks_outputs]
        # What the finalize saw: how many children, how many of them completed, and their sum.
        return {
            "expected": done.output,
            "seen": len(outputs),
            "sum": sum(o for o in outputs if isinstance(o, int)),
        }

    tree = executor.parent_task(
        id="a_tree",
        timeout_ms=1500,
        run_parent=run_tree,
        finalize_task=FinalizeTask(id="a_tree_finalize", timeout_ms=1500, run=finalize),
    )
    return ATasks(
        hang_once=executor.task(id="a_hang_once", timeout_ms=1500, run=hang_once),
        # One-hour timeouts: the lease must not depend on them.
        hang_hour=executor.task(id="a_hang_hour", timeout_ms=3_600_000, run=hang_once),
        sleep_hour=executor.task(id="a_sleep_hour", timeout_ms=3_600_000, run=sleep_for),
        crash_always=executor.task(id="a_crash_always", timeout_ms=1500, run=crash_always),
        stale_once=executor.task(id="a_stale_once", timeout_ms=1000, run=stale_once),
        simple=simple_task,
        leaf=leaf_task,
        tree=tree,
    )
