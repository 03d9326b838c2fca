"""Schedules across processes: 3 worker processes fire one ``every_ms=500`` schedule for 5 s.

Each process logs the ticks it fires (tick key and execution id). However the three race for
each tick, every tick key is fired by exactly one process, and the executions the database
holds for the scheduled task are exactly those fired ticks' executions: one per tick. On a
SQLite file (its write lock serialises the racers) and PostgreSQL (the compare-and-set on the
schedule's row decides between concurrent transactions).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from tests._stored import all_records

from durable_execution.model import FINISHED_STATUSES
from durable_execution.storage import DurableStorage

from ._schedule_worker import SCHEDULE_ID, TASK_ID

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("_schedule_worker.py")
PROCESSES = 3
RUN_S = 5.0
READY_TIMEOUT_S = 60.0
_FIRED = re.compile(
    r"pid=(\d+) INFO durable_execution: Schedule (\S+) fired tick (\S+) as execution (\S+)"
)


def _start(url: str, state: Path, n: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)])
    with open(state / f"worker-{n}.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, str(WORKER), url, str(state)], env=env, stdout=log, stderr=log
        )


def _wait_ready(procs: list[subprocess.Popen[bytes]], state: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    for proc in procs:
        while not (state / f"ready-{proc.pid}").exists():
            assert proc.poll() is None, _logs(state)
            assert time.monotonic() < deadline, f"worker {proc.pid} not ready\n{_logs(state)}"
            time.sleep(0.05)


def _logs(state: Path) -> str:
    return "\n".join(path.read_text() for path in sorted(state.glob("worker-*.log")))


async def test_three_processes_fire_each_tick_of_a_schedule_once(
    db_url: str, storage: DurableStorage, tmp_path: Path
) -> None:
    procs = [_start(db_url, tmp_path, n) for n in range(PROCESSES)]
    try:
        _wait_ready(procs, tmp_path)
        await asyncio.sleep(RUN_S)  # the schedule ticks ten times meanwhile; nothing is timed
        (tmp_path / "stop").touch()
        for proc in procs:
            assert proc.wait(timeout=60) == 0, _logs(tmp_path)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    fired = [match.groups() for match in _FIRED.finditer(_logs(tmp_path))]
    keys = [key for _, schedule_id, key, _ in fired if schedule_id == SCHEDULE_ID]
    assert len(keys) >= 2, _logs(tmp_path)
    assert len(keys) == len(set(keys)), "a tick was fired twice"
    rows = await all_records(storage)
    scheduled = [row for row in rows if row.task_id == TASK_ID]
    assert sorted(row.execution_id for row in scheduled) == sorted(e for *_, e in fired)
    # Fired ticks run: their executions finished (a clean shutdown drains every attempt) or,
    # for a tick fired as the processes stopped, are still waiting for a worker.
    assert all(row.status in (*FINISHED_STATUSES, "ready") for row in scheduled)
    firers = {pid for pid, *_ in fired}
    print(f"{len(keys)} ticks fired by {len(firers)} of {PROCESSES} processes")
