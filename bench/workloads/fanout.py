"""W2 fan-out: one parent with C children (C = 500) and a finalize task; seconds.

The clock runs from enqueueing the parent until its handle returns it finished, which needs
every child run and closed, the finalize task run, and the parent completed: the whole
propagation path, including the hot parent row.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Final

from bench.cases import Case, Sample, SampleContext, Scale, WorkloadFailedError, run_async
from bench.figures import Metric
from bench.storage import open_bench_storage
from bench.targets import BACKENDS
from bench.workloads._common import TASK_TIMEOUT_MS, echo
from durable_execution import (
    ChildTask,
    DurableExecutor,
    FinalizeTask,
    FinalizeTaskInput,
    ParentTaskResult,
    TaskContext,
)

SECONDS: Final = Metric("seconds", "s", False, "enqueue of the parent to its finished result")


def cases(scale: Scale) -> list[Case]:
    return [
        Case(
            workload="W2",
            name=f"W2 fan-out children={children}",
            params={"children": children},
            metrics=(SECONDS,),
            backends=BACKENDS,
            measure=partial(measure, children=children),
        )
        for children in scale.sizes(full=(500,), smoke=20)
    ]


def measure(context: SampleContext, children: int) -> Sample:
    return run_async(lambda: _run(context.target.url, children), context.timeout_s)


async def _run(url: str, children: int) -> Sample:
    async with open_bench_storage(url) as storage:
        executor = DurableExecutor(storage)
        child = executor.task(id="bench_child", timeout_ms=TASK_TIMEOUT_MS, run=echo)

        async def fan_out(ctx: TaskContext, count: int) -> ParentTaskResult[int]:
            return ParentTaskResult(
                output=count, children_tasks=[ChildTask(child, i) for i in range(count)]
            )

        async def total(ctx: TaskContext, value: FinalizeTaskInput[int, int]) -> int:
            result = 0
            for item in value.children_tasks_outputs:
                if not isinstance(item.output, int):  # children outputs are untyped (object)
                    raise TypeError(f"child {item.index} returned {item.output!r}")
                result += item.output
            return result

        parent = executor.parent_task(
            id="bench_parent",
            timeout_ms=TASK_TIMEOUT_MS,
            run_parent=fan_out,
            finalize_task=FinalizeTask(id="bench_total", timeout_ms=TASK_TIMEOUT_MS, run=total),
        )
        async with executor:
            started = time.perf_counter()
            handle = await executor.enqueue_task(parent, children)
            execution = await handle.wait_and_get_finished_execution()
            finished = time.perf_counter()
    expected = children * (children - 1) // 2
    if execution.status != "completed" or execution.output != expected:
        raise WorkloadFailedError(
            f"W2: parent ended {execution.status} with output "
            f"{getattr(execution, 'output', None)!r}, expected completed with {expected}"
        )
    return Sample({SECONDS.key: finished - started})
