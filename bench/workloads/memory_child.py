"""The process whose memory W1-at-scale is measured: ``python -m bench.workloads.memory_child``.

Runs W1 once (N trivial tasks enqueued at once, all awaited) in a fresh interpreter and prints a
JSON object with what it saw, in one of two modes:

* ``rss``: resident memory once the executor is up (``baseline_bytes``) and the peak over the
  whole process (``peak_bytes``, the kernel's high-water mark ``VmHWM``), nothing else running
  to distort it. Not ``getrusage``: Linux carries ``ru_maxrss`` over ``execve``, so a child of
  a big harness would report the harness's peak;
* ``retained``: with ``tracemalloc`` tracing from the moment the executor is up, the Python
  memory still allocated after every handle is done, every execution closed and the garbage
  collected — what the executor keeps per finished execution while it goes on running. On the
  in-memory backend that includes the stored rows themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import tracemalloc
from pathlib import Path
from typing import Literal

from bench.storage import open_bench_storage
from bench.workloads._common import TASK_TIMEOUT_MS, echo, expect_outputs, wait_until_all_closed
from durable_execution import DurableExecutor


def _status_bytes(field: str) -> int:
    """A memory figure of this process from ``/proc/self/status`` (reset by ``execve``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024  # reported in kB
    raise RuntimeError(f"no {field} in /proc/self/status")


async def _run(url: str, n: int, mode: Literal["rss", "retained"]) -> dict[str, int]:
    async with open_bench_storage(url) as storage:
        executor = DurableExecutor(storage)
        task = executor.task(id="bench_echo", timeout_ms=TASK_TIMEOUT_MS, run=echo)
        async with executor:
            # One task first, so that lazily created state (connections, caches) is baseline.
            warm = await executor.enqueue_task(task, -1)
            await warm.wait_and_get_finished_execution()
            await wait_until_all_closed(storage)
            gc.collect()
            if mode == "retained":
                tracemalloc.start()
            baseline_rss = _status_bytes("VmRSS")
            traced_before = tracemalloc.get_traced_memory()[0]

            handles = await asyncio.gather(*(executor.enqueue_task(task, i) for i in range(n)))
            executions = await asyncio.gather(
                *(handle.wait_and_get_finished_execution() for handle in handles)
            )
            expect_outputs(executions, range(n), "W1 (memory)")
            del handles, executions
            await wait_until_all_closed(storage)
            gc.collect()
            traced_after = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
    return {
        "baseline_bytes": baseline_rss,
        "peak_bytes": _status_bytes("VmHWM"),
        "retained_bytes": traced_after - traced_before,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--mode", choices=("rss", "retained"), required=True)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(_run(args.url, args.n, args.mode))), flush=True)


if __name__ == "__main__":
    main()
