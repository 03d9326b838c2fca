"""Guarantee 4: a stale attempt cannot overwrite the newer attempt's result.

A worker subprocess runs an attempt and is paused (SIGSTOP) mid-run, long enough for its lease to
expire; a second worker re-runs the execution and completes it. The first worker is then resumed
(SIGCONT) and its attempt returns a result: that write is guarded by the attempt's fencing token
(the version its claim wrote) and must change nothing.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from durable_execution import DurableExecutor, JsonSerializer
from durable_execution.storage import DurableStorage, open_storage

from ._crash_tasks import SideStore, register_tasks
from ._worker_processes import read, runs_of, side_query, wait_finished, wait_for_run, workers


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


async def test_a_paused_attempt_cannot_overwrite_the_newer_attempts_result(
    storage: DurableStorage, backend_url: str, tmp_path: Path
) -> None:
    side = SideStore(tmp_path / "side.db")
    executor = DurableExecutor(storage)  # only enqueues
    tasks = register_tasks(executor, side, None)
    with workers(backend_url, tmp_path) as pool:
        stale = pool.start()
        handle = await executor.enqueue_task(tasks.stale_once, "s1")
        wait_for_run(pool.side, handle.execution_id)
        stale.send_signal(signal.SIGSTOP)  # alive, holding the attempt, but frozen

        fresh = pool.start()
        [completed] = await wait_finished(storage, [handle.execution_id], timeout_s=60, pool=pool)
        assert completed.status == "completed", pool.logs()
        assert completed.output == JsonSerializer().serialize("fresh s1")

        # Let the stale attempt finish and try to store "stale s1" (and, its own timeout having
        # passed meanwhile, maybe a timed_out error): both writes are fenced off.
        (pool.state / "gate").touch()
        stale.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 30
        while not side_query(pool.side, "SELECT 1 FROM events WHERE kind = 'stale_returned'"):
            assert time.monotonic() < deadline, pool.logs()
            await asyncio.sleep(0.02)
        pool.stop_all()  # a clean shutdown waits for the stale attempt's write to be attempted
        assert stale.returncode == 0, pool.logs()
        [after] = await read(storage, [handle.execution_id])

    assert after == completed  # not one field changed: status, output, version, timestamps
    assert runs_of(pool.side, handle.execution_id) == [
        (stale.pid, None),
        (fresh.pid, "Task expired"),
    ]
