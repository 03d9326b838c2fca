"""Memory of W1 at scale, each figure from a fresh subprocess (workload name ``rss``).

Two cases, so that one failing does not lose the other's figures:

* ``rss W1 n=N`` (N = 10,000): peak RSS of the whole process, and its growth over the idle
  executor's RSS per task;
* ``retained W1 n=M``: Python memory retained per finished execution once everything is done,
  traced with ``tracemalloc`` in a separate run (tracing slows the process and inflates its
  RSS). M is at most ``RETAINED_MAX_N``: the figure is per execution, 2,000 executions amortise
  the fixed costs, and tracing every allocation of 10,000 can take the better part of an hour
  while the executor is slow.

See :mod:`bench.workloads.memory_child` for what exactly is measured.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Final, Literal

from bench.cases import Case, Sample, SampleContext, Scale, WorkloadFailedError
from bench.figures import Metric
from bench.subprocesses import child_process
from bench.targets import BACKENDS

PEAK_RSS: Final = Metric("peak_rss_mib", "MiB", False, "peak resident memory of the process")
GROWTH: Final = Metric(
    "rss_growth_per_task_bytes", "B/task", False, "(peak RSS - idle executor RSS) / N"
)
RETAINED: Final = Metric(
    "retained_per_execution_bytes",
    "B/execution",
    False,
    "Python memory still held per finished, closed execution (memory backend: incl. rows)",
)
RETAINED_MAX_N: Final = 2_000


def cases(scale: Scale) -> list[Case]:
    out: list[Case] = []
    for n in scale.sizes(full=(10_000,), smoke=200):
        retained_n = min(n, RETAINED_MAX_N)
        out += [
            Case(
                workload="rss",
                name=f"rss W1 n={n}",
                params={"n": n},
                metrics=(PEAK_RSS, GROWTH),
                backends=BACKENDS,
                measure=partial(measure_rss, n=n),
            ),
            Case(
                workload="rss",
                name=f"retained W1 n={retained_n}",
                params={"n": retained_n},
                metrics=(RETAINED,),
                backends=BACKENDS,
                measure=partial(measure_retained, n=retained_n),
            ),
        ]
    return out


def measure_rss(context: SampleContext, n: int) -> Sample:
    rss = _child(context, n, "rss")
    return Sample(
        {
            PEAK_RSS.key: rss["peak_bytes"] / 2**20,
            GROWTH.key: (rss["peak_bytes"] - rss["baseline_bytes"]) / n,
        },
        info={"baseline_rss_mib": round(rss["baseline_bytes"] / 2**20, 1)},
    )


def measure_retained(context: SampleContext, n: int) -> Sample:
    retained = _child(context, n, "retained")
    return Sample({RETAINED.key: retained["retained_bytes"] / n})


def _child(context: SampleContext, n: int, mode: Literal["rss", "retained"]) -> dict[str, int]:
    args = ["--url", context.target.url, "--n", str(n), "--mode", mode]
    with child_process("bench.workloads.memory_child", args, stderr=True) as child:
        stdout, stderr = child.communicate(timeout=context.timeout_s)
    if child.returncode != 0:
        raise WorkloadFailedError(
            f"memory child ({mode}) exited with {child.returncode}: {stderr.strip()[-2000:]}"
        )
    report: dict[str, int] = json.loads(stdout.strip().splitlines()[-1])
    return report
