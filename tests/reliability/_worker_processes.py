"""Helpers of the worker-process tests: worker subprocesses, the side file, reading the storage."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests._stored import all_records as stored_records

from durable_execution.model import FINISHED_STATUSES
from durable_execution.storage import DurableStorage, TaskExecutionRecord

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("_worker_main.py")
READY_TIMEOUT_S = 60.0


@dataclass
class Workers:
    """Worker subprocesses on one storage; every one is reaped when the test ends."""

    url: str
    side: Path
    state: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    kills: int = 0
    started: int = 0

    def start(
        self,
        *,
        expire_ms: int = 2000,
        max_lease_expiries: int = 0,
        wait: bool = True,
        concurrency: int = 1000,
    ) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)])
        log = open(self.state / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                self.url,
                str(self.side),
                str(self.state),
                f"--expire-ms={expire_ms}",
                f"--max-lease-expiries={max_lease_expiries}",
                f"--concurrency={concurrency}",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs.append(proc)
        self.started += 1
        if wait:
            self.wait_ready(proc)
        return proc

    def wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        ready = self.state / f"ready-{proc.pid}"
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not ready.exists():
            if proc.poll() is not None:
                raise AssertionError(f"worker exited with {proc.returncode}:\n{self.logs()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker never became ready:\n{self.logs()}")
            time.sleep(0.02)

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.kills += 1

    def stop_all(self) -> None:
        """Ask every live worker to shut down cleanly; each must exit 0 (or have been killed)."""
        (self.state / "stop").touch()
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)  # harmless unless the test paused it
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError(f"worker {proc.pid} did not stop:\n{self.logs()}") from None

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.state.glob("worker-*.log"))
        )


@contextmanager
def workers(url: str, tmp: Path) -> Iterator[Workers]:
    state = tmp / "state"
    state.mkdir()
    pool = Workers(url=url, side=tmp / "side.db", state=state)
    try:
        yield pool
    finally:
        for proc in pool.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


# --- the side file -----------------------------------------------------------------------------


def side_query(side: Path, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(side, timeout=60.0)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def runs_of(side: Path, execution_id: str) -> list[tuple[int, str | None]]:
    """(pid, prev_error message) of every recorded run of ``execution_id``."""
    rows = side_query(
        side,
        "SELECT pid, prev_error FROM runs WHERE execution_id = ? ORDER BY rowid",
        [execution_id],
    )
    return [(int(str(pid)), None if prev is None else str(prev)) for pid, prev in rows]


def wait_for_run(side: Path, execution_id: str, count: int = 1, timeout_s: float = 30.0) -> None:
    """Wait until ``execution_id`` was run ``count`` times (its first act is to record it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if side.exists():
            try:
                if len(runs_of(side, execution_id)) >= count:
                    return
            except sqlite3.OperationalError:
                pass  # the side tables are created by the first worker
        time.sleep(0.01)
    raise AssertionError(f"{execution_id} did not run {count} time(s) within {timeout_s}s")


# --- the storage under test --------------------------------------------------------------------


async def read(storage: DurableStorage, execution_ids: Sequence[str]) -> list[TaskExecutionRecord]:
    async with storage.transaction() as tx:
        return await tx.get_task_executions(list(execution_ids))


async def all_records(storage: DurableStorage) -> list[TaskExecutionRecord]:
    return await stored_records(storage)


async def wait_finished(
    storage: DurableStorage, execution_ids: Sequence[str], *, timeout_s: float, pool: Workers
) -> list[TaskExecutionRecord]:
    """The records once every one of ``execution_ids`` is finished *and closed*."""
    deadline = time.monotonic() + timeout_s
    while True:
        records = await read(storage, execution_ids)
        if all(r.status in FINISHED_STATUSES and r.is_closed for r in records):
            return records
        if time.monotonic() > deadline:
            pending = [
                (r.execution_id, r.status, r.is_closed)
                for r in records
                if r.status not in FINISHED_STATUSES or not r.is_closed
            ]
            raise AssertionError(f"not finished: {pending[:10]} ({len(pending)})\n{pool.logs()}")
        await asyncio.sleep(0.1)


def assert_nothing_stuck(records: Sequence[TaskExecutionRecord]) -> None:
    """Every execution in the table finished and was closed: no parent waits, no row runs."""
    stuck = [
        (r.execution_id, r.task_id, r.status, r.is_closed)
        for r in records
        if r.status not in FINISHED_STATUSES or not r.is_closed
    ]
    assert stuck == []
