"""W5: the seed workload (the one `durable-execution demo` runs), wall time in seconds.

Reuses :func:`durable_execution._workload.run_seed_workload`, which checks every expected value;
a run with any failed check is an error, not a figure. Its own clock covers executor start to
shutdown, which is what we report.
"""

from __future__ import annotations

from typing import Final

from bench.cases import Case, Sample, SampleContext, Scale, WorkloadFailedError, run_async
from bench.figures import Metric
from bench.storage import open_bench_storage
from bench.targets import BACKENDS
from durable_execution._workload import run_seed_workload

SECONDS: Final = Metric("seconds", "s", False, "executor start to shutdown, every check passing")


def cases(scale: Scale) -> list[Case]:
    del scale  # the reference workload has one fixed size
    return [
        Case(
            workload="W5",
            name="W5 reference workload",
            params={},
            metrics=(SECONDS,),
            backends=BACKENDS,
            measure=measure,
        )
    ]


def measure(context: SampleContext) -> Sample:
    return run_async(lambda: _run(context.target.url), context.timeout_s)


async def _run(url: str) -> Sample:
    async with open_bench_storage(url) as storage:
        report = await run_seed_workload(storage)
    if not report.ok:
        failures = "; ".join(f"{check.name}: {check.detail}" for check in report.failures[:5])
        raise WorkloadFailedError(
            f"W5: {len(report.failures)} checks failed, first few: {failures}"
        )
    return Sample({SECONDS.key: report.wall_time_s}, info={"executions": report.executions})
