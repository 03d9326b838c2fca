"""Enqueue throughput with many concurrent enqueuing transactions on PostgreSQL.

``python -m bench.notify_contention [--processes 4] [--concurrency 8] [--seconds 10]``

Every transaction inserts one execution that is ready now, the case that wakes other processes
through LISTEN/NOTIFY. A transaction that ran ``pg_notify`` takes a database-wide lock at commit
(the notification queue's), so notifying transactions commit one at a time; this measures what
that costs when many commit at once. ``--processes`` worker processes each run ``--concurrency``
transactions at a time on their own pool for ``--seconds``; the figure is committed enqueue
transactions per second, all processes together, on a fresh database dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import time
from collections.abc import Sequence

from bench.targets import fresh_target, postgres_admin_url
from durable_execution import clock
from durable_execution._options import ExecutionOptions
from durable_execution._records import new_record
from durable_execution.ids import generate_execution_id
from durable_execution.model import RetryOptions
from durable_execution.storage import open_storage

_OPTIONS = ExecutionOptions(
    retry_options=RetryOptions(max_attempts=0), sleep_ms_before_run=0, timeout_ms=60_000
)


async def _enqueue_for(url: str, concurrency: int, seconds: float) -> int:
    async with open_storage(url, migrate=False, pool_max_size=concurrency) as storage:
        deadline = time.monotonic() + seconds
        committed = 0

        async def one_lane() -> None:
            nonlocal committed
            while time.monotonic() < deadline:
                record = new_record(
                    task_id="noop",
                    execution_id=generate_execution_id(),
                    options=_OPTIONS,
                    run_input="0",
                    now=clock.now(),
                )
                async with storage.transaction() as tx:
                    await tx.insert_task_executions([record])
                committed += 1

        await asyncio.gather(*(one_lane() for _ in range(concurrency)))
        return committed


def _process(
    url: str, concurrency: int, seconds: float, results: multiprocessing.Queue[int]
) -> None:
    results.put(asyncio.run(_enqueue_for(url, concurrency, seconds)))


async def _migrate(url: str) -> None:
    async with open_storage(url):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.notify_contention")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--postgres-admin-url", default=postgres_admin_url())
    args = parser.parse_args(argv)
    with fresh_target("postgresql", args.postgres_admin_url) as target:
        asyncio.run(_migrate(target.url))
        results: multiprocessing.Queue[int] = multiprocessing.Queue()
        workers = [
            multiprocessing.Process(
                target=_process, args=(target.url, args.concurrency, args.seconds, results)
            )
            for _ in range(args.processes)
        ]
        for worker in workers:
            worker.start()
        committed = sum(results.get(timeout=args.seconds + 60) for _ in workers)
        for worker in workers:
            worker.join()
    report = {
        "processes": args.processes,
        "concurrency": args.concurrency,
        "seconds": args.seconds,
        "transactions": committed,
        "transactions_per_s": round(committed / args.seconds, 1),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
