"""Queues and per-key concurrency limits across worker processes (SQLite and PostgreSQL).

Three ``durable-execution worker --queue limited`` processes share one database; the task has
``concurrency_limit=2``. The tasks themselves count how many of them run at once per key, in a
file every process writes under a lock (``limited_app``): never more than two per key, whichever
worker claimed them. An execution of a queue no worker serves stays ready.
"""

from __future__ import annotations

import asyncio
import signal
from contextlib import ExitStack
from pathlib import Path

from durable_execution import DurableExecutor, TaskEnqueueOptions, open_storage

from ._support import running_worker
from .limited_app import LIMIT, Work, create_counter, peaks, register, runs

WORKERS = 3
PER_KEY = {"a": 12, "b": 6}


async def test_three_workers_never_run_more_than_the_limit_of_one_key(
    db_url: str, tmp_path: Path
) -> None:
    counter = str(tmp_path / "counter.db")
    create_counter(counter)
    options = ("--queue", "limited", "--concurrency", "10", "--poll-interval-ms", "50")
    with ExitStack() as stack:
        workers = [
            stack.enter_context(
                running_worker(tmp_path, db_url, *options, app="limited_app:register")
            )
            for _ in range(WORKERS)
        ]
        async with open_storage(db_url, migrate=False) as storage:
            executor = DurableExecutor(storage)  # never started: only the workers run tasks
            tasks = register(executor)
            handles = [
                await executor.enqueue_task(
                    tasks.limited,
                    Work(counter=counter, key=key),
                    TaskEnqueueOptions(concurrency_key=key),
                )
                for key, count in PER_KEY.items()
                for _ in range(count)
            ]
            stray = await executor.enqueue_task(tasks.elsewhere, 1)
            finished = await asyncio.gather(
                *(
                    handle.wait_and_get_finished_execution(
                        polling_interval_ms=50, timeout_ms=120_000
                    )
                    for handle in handles
                )
            )
            # No worker serves the queue "other": its execution was never claimed.
            assert (await stray.get_execution()).status == "ready"
        for worker in workers:
            worker.signal(signal.SIGTERM)
        for worker in workers:
            assert worker.wait() == 0, worker.log()
    logs = "\n".join(worker.log() for worker in workers)
    assert [execution.status for execution in finished] == ["completed"] * len(handles), logs
    assert runs(counter) == sum(PER_KEY.values())
    observed = peaks(counter)
    assert set(observed) == set(PER_KEY)
    assert all(peak <= LIMIT for peak in observed.values()), observed
    assert "Traceback" not in logs
    # Each worker served only its queue (the log names it).
    assert all("queues limited\n" in worker.log() for worker in workers)
