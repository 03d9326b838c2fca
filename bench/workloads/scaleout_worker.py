"""One W6 worker process: ``python -m bench.workloads.scaleout_worker --url URL``.

Talks to the coordinator over its standard streams, one line at a time:

1. opens the storage, registers the sleeping task, prints ``ready``;
2. on ``go``, starts its executor (which claims from the shared queue at once);
3. on ``stop`` (or end of input), shuts down and prints ``{"runs": <attempts it ran>, "claims":
   {...}}`` (its claims and the rows each took: ``scaleout_probe.ClaimCounter``).

Starting only on ``go`` keeps process start-up and imports out of the measured interval.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from bench.storage import open_bench_storage
from bench.workloads.scaleout import SLEEP_TASK_ID, TASK_SLEEP_S, TASK_TIMEOUT_MS
from bench.workloads.scaleout_probe import ClaimCounter
from durable_execution import DurableExecutor, TaskContext


async def _read_line() -> str:
    # A blocking read on a thread: simpler than wiring stdin into the event loop, and the
    # coordinator only writes two lines.
    line: str = await asyncio.to_thread(sys.stdin.readline)
    return line.strip()


async def _serve(url: str, claims: ClaimCounter) -> int:
    runs = 0

    async def sleep_task(ctx: TaskContext, value: int) -> int:
        nonlocal runs
        runs += 1
        await asyncio.sleep(TASK_SLEEP_S)
        return value

    async with open_bench_storage(url) as storage:
        executor = DurableExecutor(claims.wrap(storage))
        executor.task(id=SLEEP_TASK_ID, timeout_ms=TASK_TIMEOUT_MS, run=sleep_task)
        print("ready", flush=True)
        if await _read_line() != "go":
            return runs
        async with executor:
            await _read_line()  # "stop", or "" at end of input: either way, we are done
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    args = parser.parse_args()
    claims = ClaimCounter()
    runs = asyncio.run(_serve(args.url, claims))
    print(json.dumps({"runs": runs, "claims": claims.report()}), flush=True)


if __name__ == "__main__":
    main()
