"""``python -m durable_execution.demo`` (what ``make demo`` runs): the seed workload, checked.

Runs the behaviour doc's §5.2 workload on the in-memory storage (the SQLite storage comes in a
later issue), prints a short summary and exits 0 only if every expected value matched.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from durable_execution._workload import WorkloadReport, run_seed_workload
from durable_execution.storage.memory import InMemoryStorage


def summarize(report: WorkloadReport, backend: str) -> str:
    statuses = ", ".join(f"{status} {count}" for status, count in sorted(report.statuses.items()))
    passed = sum(check.ok for check in report.checks)
    lines = [
        f"durable-execution demo on {backend}",
        f"  executions stored: {report.executions} ({statuses})",
        f"  checks passed:     {passed}/{len(report.checks)}",
        f"  wall time:         {report.wall_time_s:.2f} s",
    ]
    lines += [f"  FAILED {check.name}: {check.detail}" for check in report.failures]
    lines.append("  result: " + ("OK" if report.ok else "MISMATCH"))
    return "\n".join(lines)


async def _main() -> int:
    report = await run_seed_workload(InMemoryStorage())
    print(summarize(report, "in-memory storage"))
    return 0 if report.ok else 1


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(_main()))


if __name__ == "__main__":
    main()
