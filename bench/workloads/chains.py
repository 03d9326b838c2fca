"""W3 chains: K three-step ``sequential_tasks`` chains (K = 100) enqueued at once; seconds.

Each chain is a parent whose child is the next step, so one chain is nine executions and every
hop (claim → run → close → parent → next step) is on the critical path: a workload that shows
idle polling between hops as plainly as W4 does for one task.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import Final

from bench.cases import Case, Sample, SampleContext, Scale, run_async
from bench.figures import Metric
from bench.storage import open_bench_storage
from bench.targets import BACKENDS
from bench.workloads._common import TASK_TIMEOUT_MS, expect_outputs
from durable_execution import DurableExecutor, TaskContext

SECONDS: Final = Metric("seconds", "s", False, "first enqueue to the last chain's result")


def cases(scale: Scale) -> list[Case]:
    return [
        Case(
            workload="W3",
            name=f"W3 chains k={chains}",
            params={"chains": chains, "steps": 3},
            metrics=(SECONDS,),
            backends=BACKENDS,
            measure=partial(measure, chains=chains),
        )
        for chains in scale.sizes(full=(100,), smoke=5)
    ]


def measure(context: SampleContext, chains: int) -> Sample:
    return run_async(lambda: _run(context.target.url, chains), context.timeout_s)


async def _increment(ctx: TaskContext, value: int) -> int:
    return value + 1


async def _run(url: str, chains: int) -> Sample:
    async with open_bench_storage(url) as storage:
        executor = DurableExecutor(storage)
        chain = executor.sequential_tasks(
            *(
                executor.task(id=f"bench_step{step}", timeout_ms=TASK_TIMEOUT_MS, run=_increment)
                for step in (1, 2, 3)
            )
        )
        async with executor:
            started = time.perf_counter()
            handles = await asyncio.gather(
                *(executor.enqueue_task(chain, i * 10) for i in range(chains))
            )
            executions = await asyncio.gather(
                *(handle.wait_and_get_finished_execution() for handle in handles)
            )
            finished = time.perf_counter()
    expect_outputs(executions, [i * 10 + 3 for i in range(chains)], "W3")
    return Sample({SECONDS.key: finished - started})
