"""A child process for the multi-process SQLite test: increments one counter row many times.

Run as ``python _hammer.py <sqlite path> <increments> <concurrent tasks>``. Each increment is a
read-modify-write transaction *without* a version guard, so only the storage's locking keeps two
processes from losing each other's updates. Exits non-zero on any error (printed to stderr).
"""

from __future__ import annotations

import asyncio
import sys

from durable_execution.clock import now
from durable_execution.storage import (
    DurableStorage,
    TaskExecutionUpdate,
    WhereByExecutionIds,
    open_storage,
)

COUNTER_ID = "te_counter"


async def increment(storage: DurableStorage) -> None:
    async with storage.transaction() as tx:
        (row,) = await tx.get_task_executions([COUNTER_ID])
        await asyncio.sleep(0)  # let this process's other tasks try to interleave
        await tx.update_task_executions_each(
            [
                (
                    WhereByExecutionIds([COUNTER_ID]),
                    TaskExecutionUpdate(
                        updated_at=now(),
                        children_tasks_completed_count=row.children_tasks_completed_count + 1,
                    ),
                )
            ]
        )


async def main(path: str, increments: int, tasks: int) -> None:
    async with open_storage(f"sqlite:///{path}") as storage:  # also races the other migrators

        async def worker(share: int) -> None:
            for _ in range(share):
                await increment(storage)

        shares = [increments // tasks + (1 if n < increments % tasks else 0) for n in range(tasks)]
        await asyncio.gather(*(worker(share) for share in shares))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
