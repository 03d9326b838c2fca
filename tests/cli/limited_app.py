"""A worker app with a per-key concurrency limit: ``durable-execution worker limited_app:register``.

Each run of ``limited`` counts itself in a SQLite file shared by every worker process (the
path travels in the input), under the file's write lock: on entry it increments the running
count of its key and raises the key's maximum if it is exceeded, then holds its slot a moment
and decrements. So the tasks themselves observe how many of them ran at once, whatever the
claim believes.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Final, NamedTuple, TypedDict

from durable_execution import DurableExecutor, Task, TaskContext

LIMIT: Final = 2
QUEUE: Final = "limited"
HOLD_S: Final = 0.15


class Work(TypedDict):
    counter: str
    key: str


def create_counter(path: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE running (key TEXT PRIMARY KEY, now INTEGER, peak INTEGER)")
        conn.execute("CREATE TABLE runs (key TEXT)")


def peaks(path: str) -> dict[str, int]:
    """The most runs of each key that were running at once."""
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT key, peak FROM running").fetchall())


def runs(path: str) -> int:
    with sqlite3.connect(path) as conn:
        count: int = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
        return count


def _count(path: str, key: str, step: int) -> None:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO running (key, now, peak) VALUES (?, 0, 0) ON CONFLICT (key) DO NOTHING",
            (key,),
        )
        conn.execute("UPDATE running SET now = now + ? WHERE key = ?", (step, key))
        conn.execute("UPDATE running SET peak = max(peak, now) WHERE key = ?", (key,))
        if step > 0:
            conn.execute("INSERT INTO runs (key) VALUES (?)", (key,))
        conn.execute("COMMIT")
    finally:
        conn.close()


def limited(ctx: TaskContext, work: Work) -> str:
    _count(work["counter"], work["key"], +1)
    try:
        time.sleep(HOLD_S)  # a sync task: it runs in a worker thread
    finally:
        _count(work["counter"], work["key"], -1)
    return work["key"]


def elsewhere(ctx: TaskContext, value: int) -> int:
    return value


class Tasks(NamedTuple):
    limited: Task[Work, str]
    elsewhere: Task[int, int]


def register(executor: DurableExecutor) -> Tasks:
    return Tasks(
        limited=executor.task(
            id="limited", timeout_ms=30_000, run=limited, queue=QUEUE, concurrency_limit=LIMIT
        ),
        elsewhere=executor.task(id="elsewhere", timeout_ms=30_000, run=elsewhere, queue="other"),
    )
