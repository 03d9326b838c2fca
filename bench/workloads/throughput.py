"""W1 throughput: N trivial independent tasks enqueued at once and all awaited.

The clock runs from the first enqueue until every handle has returned its finished execution —
what a user who fires off N tasks and waits for them sees. Two ways to enqueue: ``gather``, one
``asyncio.gather`` of ``enqueue_task`` calls (the executor coalesces concurrent enqueues into
shared transactions), and ``batch``, one ``enqueue_tasks`` call (one transaction for all).
Closing (propagation bookkeeping) continues after the handles return; a third figure includes
it, so deferred work cannot flatter the first.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import Final, Literal, TypeAlias

from bench.cases import Case, Sample, SampleContext, Scale, run_async
from bench.figures import Metric
from bench.storage import open_bench_storage
from bench.targets import BACKENDS
from bench.workloads._common import TASK_TIMEOUT_MS, echo, expect_outputs, wait_until_all_closed
from durable_execution import DurableExecutor

EnqueueMode: TypeAlias = Literal["gather", "batch"]
ENQUEUE_MODES: Final[tuple[EnqueueMode, ...]] = ("gather", "batch")

TASKS_PER_S: Final = Metric(
    "tasks_per_s", "tasks/s", True, "tasks finished per second, first enqueue to last result"
)
ENQUEUE_PER_S: Final = Metric(
    "enqueue_per_s", "tasks/s", True, "enqueue rate alone (until every handle was returned)"
)
CLOSED_PER_S: Final = Metric(
    "closed_per_s", "tasks/s", True, "tasks per second until the last one was also closed"
)


def cases(scale: Scale) -> list[Case]:
    return [
        Case(
            workload="W1",
            name=f"W1 throughput n={n}" + ("" if enqueue == "gather" else f" {enqueue}"),
            params={"n": n, "enqueue": enqueue},
            metrics=(TASKS_PER_S, ENQUEUE_PER_S, CLOSED_PER_S),
            backends=BACKENDS,
            measure=partial(measure, n=n, enqueue=enqueue),
        )
        for n in scale.sizes(full=(1_000, 10_000), smoke=50)
        for enqueue in ENQUEUE_MODES
    ]


def measure(context: SampleContext, n: int, enqueue: EnqueueMode) -> Sample:
    return run_async(lambda: _run(context.target.url, n, enqueue), context.timeout_s)


async def _run(url: str, n: int, enqueue: EnqueueMode) -> Sample:
    async with open_bench_storage(url) as storage:
        executor = DurableExecutor(storage)
        task = executor.task(id="bench_echo", timeout_ms=TASK_TIMEOUT_MS, run=echo)
        async with executor:
            started = time.perf_counter()
            if enqueue == "batch":
                handles = await executor.enqueue_tasks(task, range(n))
            else:
                handles = await asyncio.gather(*(executor.enqueue_task(task, i) for i in range(n)))
            enqueued = time.perf_counter()
            executions = await asyncio.gather(
                *(handle.wait_and_get_finished_execution() for handle in handles)
            )
            finished = time.perf_counter()
            await wait_until_all_closed(storage)
            closed = time.perf_counter()
        expect_outputs(executions, range(n), "W1")
    return Sample(
        {
            TASKS_PER_S.key: n / (finished - started),
            ENQUEUE_PER_S.key: n / (enqueued - started),
            CLOSED_PER_S.key: n / (closed - started),
        }
    )
