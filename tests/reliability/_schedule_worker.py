"""A worker process of the schedule test: one executor firing one interval schedule.

Run as ``python tests/reliability/_schedule_worker.py URL STATE_DIR``. It opens the storage,
defines the task ``scheduled`` and the schedule ``every-half-second`` (``every_ms=500``),
starts, writes ``STATE_DIR/ready-<pid>`` and runs until ``STATE_DIR/stop`` exists, logging at
INFO: each tick it fires is a line "Schedule … fired tick <key> as execution <id>".
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from pathlib import Path

from durable_execution import DurableExecutor, TaskContext
from durable_execution.storage import open_storage

SCHEDULE_ID = "every-half-second"
TASK_ID = "scheduled"
EVERY_MS = 500


async def _main(url: str, state: Path) -> None:
    async with open_storage(url) as storage:
        executor = DurableExecutor(storage, background_process_intra_batch_sleep_ms=50)

        def scheduled(ctx: TaskContext, value: int) -> int:
            return value

        task = executor.task(id=TASK_ID, timeout_ms=10_000, run=scheduled)
        executor.schedule(task, id=SCHEDULE_ID, every_ms=EVERY_MS, input=42)
        async with executor:
            (state / f"ready-{os.getpid()}").touch()
            # The stop signal is a file the test creates: nothing to await but time.
            while not (state / "stop").exists():  # noqa: ASYNC110
                await asyncio.sleep(0.05)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("state", type=Path)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format=f"pid={os.getpid()} %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(_main(args.url, args.state))
