"""Sequential chains across processes: enqueued here, run by ``durable-execution worker``.

The test process and the worker register the chains independently (``chain_app.register``), as a
web process and a worker do; the chain's ids must agree for the worker to run it at all. A worker
killed between steps is replaced by another that resumes at the running step.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Literal

import pytest

from durable_execution import DurableExecutor, TaskExecution, open_storage

from ._support import running_worker
from .chain_app import register

FAST = ("--poll-interval-ms", "50")
Which = Literal["derived", "named"]


async def enqueue_chain(db: str, which: Which, runs: Path, value: int) -> str:
    async with open_storage(db) as storage:
        executor = DurableExecutor(storage)  # never started: only the worker runs tasks
        chain = getattr(register(executor), which)
        handle = await executor.enqueue_task(chain, {"runs": str(runs), "value": value})
        return handle.execution_id


async def finished_chain(db: str, which: Which, execution_id: str) -> TaskExecution[str]:
    async with open_storage(db, migrate=False) as storage:
        executor = DurableExecutor(storage)
        chain = getattr(register(executor), which)
        handle = await executor.get_task_handle(chain, execution_id)
        return await handle.wait_and_get_finished_execution(
            polling_interval_ms=50, timeout_ms=60_000
        )


def run_counts(runs: Path) -> dict[str, int]:
    return {
        step: len((runs / step).read_text().splitlines()) if (runs / step).exists() else 0
        for step in ("prepare", "hold", "finish")
    }


def wait_for_file(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"{path} did not appear within {timeout} s")
        time.sleep(0.05)


@pytest.mark.parametrize("which", ["derived", "named"])
async def test_a_chain_enqueued_here_runs_in_a_worker_process(
    db_url: str, tmp_path: Path, which: Which
) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "release").touch()  # the hold step does not wait
    with running_worker(tmp_path, db_url, *FAST, app="chain_app:register") as worker:
        execution_id = await enqueue_chain(db_url, which, runs, 1)
        execution = await finished_chain(db_url, which, execution_id)
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0, worker.log()
    assert execution.status == "completed", (execution, worker.log())
    assert execution.output == "finished with 20"
    assert run_counts(runs) == {"prepare": 1, "hold": 1, "finish": 1}
    assert "not found" not in worker.log()
    assert "Traceback" not in worker.log()


async def test_a_worker_killed_between_steps_is_resumed_at_the_running_step(
    db_url: str, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    app = "chain_app:register_with_quick_expiry"
    with running_worker(tmp_path, db_url, *FAST, app=app) as first:
        execution_id = await enqueue_chain(db_url, "derived", runs, 1)
        wait_for_file(runs / "hold.started")  # step 1 finished, step 2 is running
        first.process.kill()  # SIGKILL: a crash, nothing is cleaned up
        first.wait()
    assert run_counts(runs) == {"prepare": 1, "hold": 1, "finish": 0}
    (runs / "release").touch()
    # A new worker (a new process: its own registration of the chain) takes over the step once
    # the dead worker's lease has expired, then runs the rest of the chain.
    with running_worker(tmp_path, db_url, *FAST, app=app) as second:
        execution = await finished_chain(db_url, "derived", execution_id)
        second.signal(signal.SIGTERM)
        assert second.wait() == 0, second.log()
    assert execution.status == "completed", (execution, second.log())
    assert execution.output == "finished with 20"
    # The finished first step was not run again; the interrupted one ran again, once.
    assert run_counts(runs) == {"prepare": 1, "hold": 2, "finish": 1}
    assert "not found" not in second.log()
