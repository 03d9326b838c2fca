"""Every workload the harness knows, by the name ``--workload`` takes, in the order they run.

W1 and the floor run next to each other so that the ratio between them compares figures taken
minutes, not an hour, apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from bench.cases import Case, Scale
from bench.workloads import (
    chains,
    fanout,
    floor,
    latency,
    memory,
    reference,
    scaleout,
    soak,
    sync_enqueue,
    throughput,
)

WORKLOADS: Final[dict[str, Callable[[Scale], list[Case]]]] = {
    "W1": throughput.cases,
    "floor": floor.cases,
    "W2": fanout.cases,
    "W3": chains.cases,
    "W4": latency.cases,
    "W5": reference.cases,
    "W6": scaleout.cases,
    "rss": memory.cases,
    "W7": soak.cases,
    "W8": sync_enqueue.cases,
}

DESCRIPTIONS: Final[dict[str, str]] = {
    "W1": "throughput: N trivial tasks enqueued at once, all awaited (N=1,000 and 10,000)",
    "floor": "the same rows through plain-driver insert/claim/complete/close (SQL backends)",
    "W2": "fan-out: one parent, 500 children, a finalize task",
    "W3": "chains: 100 three-step sequential_tasks chains at once",
    "W4": "latency: one trivial task on an idle executor, p50/p95 of 50",
    "W5": "the seed workload (the demo's), every value checked",
    "W6": "scale-out: 1, 2, 4 worker processes draining 10,000 tasks of 5 ms (SQL backends)",
    "rss": "memory of W1 at N=10,000: peak RSS and retained bytes per execution (subprocess)",
    "W7": "soak: 1,000,000 tasks with retention=2s; claim p50/p99, throughput, size per 100k",
    "W8": "sync enqueue: SyncClient.enqueue_task p50/p95, 8 threads sharing it, asyncio.run",
}
