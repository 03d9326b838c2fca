"""W4 latency: one trivial task on an idle executor, enqueue → result; p50 and p95.

Each sample enqueues one task and waits for its handle; between samples the executor is left
idle long enough for its loops to go back to sleep, so the figure shows the wake-up path (an
executor that polls shows its polling interval here). A few warm-up tasks run first so that
one-time costs (connections, prepared statements) are not counted.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import Final

from bench.cases import Case, Sample, SampleContext, Scale, WorkloadFailedError, run_async
from bench.figures import Metric, percentile
from bench.storage import open_bench_storage
from bench.targets import BACKENDS
from bench.workloads._common import TASK_TIMEOUT_MS, echo
from durable_execution import DurableExecutor

P50: Final = Metric("p50_ms", "ms", False, "median enqueue-to-result latency")
P95: Final = Metric("p95_ms", "ms", False, "95th percentile enqueue-to-result latency")
MAX: Final = Metric("max_ms", "ms", False, "slowest enqueue-to-result latency")

WARM_UP: Final = 3
# Long enough that the previous task's closing is done and the loops are waiting again.
IDLE_GAP_S: Final = 0.02


def cases(scale: Scale) -> list[Case]:
    return [
        Case(
            workload="W4",
            name=f"W4 latency samples={samples}",
            params={"samples": samples},
            metrics=(P50, P95, MAX),
            backends=BACKENDS,
            measure=partial(measure, samples=samples),
        )
        for samples in scale.sizes(full=(50,), smoke=5)
    ]


def measure(context: SampleContext, samples: int) -> Sample:
    return run_async(lambda: _run(context.target.url, samples), context.timeout_s)


async def _run(url: str, samples: int) -> Sample:
    latencies_ms: list[float] = []
    async with open_bench_storage(url) as storage:
        executor = DurableExecutor(storage)
        task = executor.task(id="bench_echo", timeout_ms=TASK_TIMEOUT_MS, run=echo)
        async with executor:
            for index in range(WARM_UP + samples):
                await asyncio.sleep(IDLE_GAP_S)
                started = time.perf_counter()
                handle = await executor.enqueue_task(task, index)
                execution = await handle.wait_and_get_finished_execution()
                elapsed_ms = (time.perf_counter() - started) * 1000
                if execution.status != "completed" or execution.output != index:
                    raise WorkloadFailedError(f"W4: task {index} ended {execution.status}")
                if index >= WARM_UP:
                    latencies_ms.append(elapsed_ms)
    return Sample(
        {
            P50.key: percentile(latencies_ms, 50),
            P95.key: percentile(latencies_ms, 95),
            MAX.key: max(latencies_ms),
        },
        info={"latencies_ms": [round(value, 3) for value in latencies_ms]},
    )
