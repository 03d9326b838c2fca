"""Heartbeat leases with real worker processes: a lease is ``expire_ms`` long and renewed by the
live executor, whatever the task's timeout.

* A SIGKILLed attempt of a task with a one-hour timeout is re-run seconds after the kill, not an
  hour later.
* A live attempt that runs for ten leases keeps its lease (renewed all along), is never re-run
  by the other worker watching for expired leases, and completes once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from durable_execution import DurableExecutor, JsonSerializer
from durable_execution.clock import now
from durable_execution.storage import DurableStorage, open_storage

from ._crash_tasks import SideStore, register_tasks
from ._worker_processes import read, runs_of, wait_finished, wait_for_run, workers

EXPIRE_MS = 2000
LEASE = timedelta(milliseconds=EXPIRE_MS)
# Generous: the re-run is due ~2 s after the kill; a loaded machine may take longer, an hour
# (the old lease of timeout_ms + expire_ms) would not fit.
RERUN_WITHIN_S = 30.0


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'durable.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def storage(backend_url: str) -> AsyncIterator[DurableStorage]:
    async with open_storage(backend_url) as opened:
        yield opened


async def test_a_killed_one_hour_task_is_re_run_about_expire_ms_after_the_kill(
    storage: DurableStorage, backend_url: str, tmp_path: Path
) -> None:
    side = SideStore(tmp_path / "side.db")
    enqueuer = DurableExecutor(storage)  # never started: it only enqueues
    hang_hour = register_tasks(enqueuer, side, None).hang_hour
    with workers(backend_url, tmp_path) as pool:
        first = pool.start(expire_ms=EXPIRE_MS)
        handle = await enqueuer.enqueue_task(hang_hour, "h1")
        wait_for_run(pool.side, handle.execution_id)
        pool.kill(first)
        killed_at = time.monotonic()
        [orphan] = await read(storage, [handle.execution_id])
        assert orphan.status == "running"
        assert orphan.timeout_ms == 3_600_000
        # The lease is expire_ms from its last renewal, not the task's hour.
        assert orphan.expires_at is not None
        assert orphan.expires_at <= now() + LEASE

        second = pool.start(expire_ms=EXPIRE_MS)
        wait_for_run(pool.side, handle.execution_id, count=2, timeout_s=RERUN_WITHIN_S)
        rerun_after_s = time.monotonic() - killed_at
        [record] = await wait_finished(storage, [handle.execution_id], timeout_s=60, pool=pool)
        pool.stop_all()

    assert record.status == "completed", pool.logs()
    assert record.output == JsonSerializer().serialize("recovered h1")
    assert record.lease_expiries == 1
    assert runs_of(pool.side, handle.execution_id) == [
        (first.pid, None),
        (second.pid, "Task expired"),
    ]
    assert rerun_after_s < RERUN_WITHIN_S
    print(f"re-run {rerun_after_s:.1f} s after the kill (expire_ms={EXPIRE_MS})")


async def test_a_live_attempt_running_ten_leases_keeps_its_lease_and_completes_once(
    storage: DurableStorage, backend_url: str, tmp_path: Path
) -> None:
    side = SideStore(tmp_path / "side.db")
    enqueuer = DurableExecutor(storage)
    tasks = register_tasks(enqueuer, side, None)
    expire_ms = 1000
    run_s = 10 * expire_ms / 1000
    with workers(backend_url, tmp_path) as pool:
        runner = pool.start(expire_ms=expire_ms, concurrency=1)
        handle = await enqueuer.enqueue_task(tasks.sleep_hour, run_s)
        wait_for_run(pool.side, handle.execution_id)
        # A second worker, free to take over any lease that lapses.
        pool.start(expire_ms=expire_ms)
        seen: list[timedelta] = []
        lease_ends: set[object] = set()
        while True:
            [row] = await read(storage, [handle.execution_id])
            if row.status != "running":
                break
            assert row.expires_at is not None
            # Never more than one lease ahead (never the hour of the task's timeout).
            seen.append(row.expires_at - now())
            lease_ends.add(row.expires_at)
            await asyncio.sleep(0.2)
        [record] = await wait_finished(storage, [handle.execution_id], timeout_s=60, pool=pool)
        pool.stop_all()

    assert record.status == "completed", pool.logs()
    assert record.output == JsonSerializer().serialize(f"slept {run_s}")
    assert record.lease_expiries == 0
    assert runs_of(pool.side, handle.execution_id) == [(runner.pid, None)]
    assert max(seen) <= timedelta(milliseconds=expire_ms)
    # Renewed all along: about three new lease ends per second over ten seconds.
    assert len(lease_ends) >= 10
