"""A worker draining after SIGTERM still honours a cancel of an execution it is running."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from durable_execution import DurableExecutor, TaskExecution, open_storage

from ._support import cli, running_worker
from .cli_app import register

FAST = ("--poll-interval-ms", "50")
NATURAL_RUN_S = 60  # until_cancelled sleeps this long unless cancelled


async def enqueue_until_cancelled(db: str) -> str:
    async with open_storage(db) as storage:
        executor = DurableExecutor(storage)  # never started: only the worker runs tasks
        handle = await executor.enqueue_task(register(executor).until_cancelled, None)
        return handle.execution_id


async def current(db: str, execution_id: str) -> TaskExecution[str]:
    async with open_storage(db, migrate=False) as storage:
        executor = DurableExecutor(storage)
        handle = await executor.get_task_handle(register(executor).until_cancelled, execution_id)
        return await handle.get_execution()


async def test_a_cancel_while_the_worker_drains_stops_the_attempt(
    db_url: str, tmp_path: Path
) -> None:
    with running_worker(tmp_path, db_url, *FAST) as worker:
        execution_id = await enqueue_until_cancelled(db_url)
        worker.wait_for_log(f"until_cancelled started {execution_id}")
        worker.signal(signal.SIGTERM)
        worker.wait_for_log("shutting down once 1 running execution(s) finish")
        await asyncio.sleep(0.3)  # into the drain: the worker has stopped claiming
        began = time.monotonic()
        result = cli("cancel", execution_id, "--db", db_url)
        assert result.returncode == 0, result.stderr
        assert "(it was running)" in result.stdout
        status = worker.wait(timeout=20)
        took = time.monotonic() - began
    log = worker.log()
    assert status == 0, log
    assert took < NATURAL_RUN_S / 3, log
    assert f"until_cancelled stopped {execution_id}" in log
    assert log.index(f"until_cancelled stopped {execution_id}") < log.index("Worker stopped")
    assert (await current(db_url, execution_id)).status == "cancelled"
