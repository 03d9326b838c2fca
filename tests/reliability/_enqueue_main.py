"""An enqueuing process for the idempotency test: many enqueues of one idempotency key.

Run as ``python tests/reliability/_enqueue_main.py URL KEY COUNT GO_FILE``: it opens the storage,
registers the task (never starts the executor: it only enqueues), waits until ``GO_FILE``
exists (so that every process starts enqueuing at the same moment), then enqueues ``COUNT``
executions with the key — half through concurrent ``enqueue_task`` calls (coalesced into shared
transactions), half through ``enqueue_tasks`` batches — and prints the execution id of every
handle it got, one per line.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from durable_execution import DurableExecutor, TaskContext, TaskEnqueueOptions
from durable_execution.storage import open_storage


def once(ctx: TaskContext, value: int) -> int:
    return value


def _wait_for(go: Path) -> None:
    deadline = time.monotonic() + 60
    while not go.exists():
        if time.monotonic() > deadline:
            raise SystemExit("the go file never appeared")
        time.sleep(0.005)


async def main(url: str, key: str, count: int, go: Path) -> None:
    async with open_storage(url) as storage:
        executor = DurableExecutor(storage)
        task = executor.task(id="idempotent", timeout_ms=5000, run=once)
        options = TaskEnqueueOptions(idempotency_key=key)
        await asyncio.to_thread(_wait_for, go)
        ids: list[str] = []
        half = count // 2
        for first in range(0, half, 10):
            handles = await asyncio.gather(
                *(executor.enqueue_task(task, n, options) for n in range(first, first + 10))
            )
            ids += [handle.execution_id for handle in handles]
        for first in range(half, count, 10):
            batch = list(range(first, min(first + 10, count)))
            handles = await executor.enqueue_tasks(task, batch, [options] * len(batch))
            ids += [handle.execution_id for handle in handles]
        await executor.shutdown()
    print("\n".join(ids), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])))
