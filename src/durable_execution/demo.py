"""The demo: ``durable-execution demo`` (what ``make demo`` runs) and its one-paragraph summary.

``python -m durable_execution.demo [--db URL]`` is the same command. The demo itself lives in
:mod:`durable_execution.cli._demo`; this module keeps the plain-text summary, which needs no
terminal and is what tests and logs read.
"""

from __future__ import annotations

import sys

from durable_execution._workload import WorkloadReport


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


def main() -> None:
    # Imported here: the CLI imports this module for summarize().
    from durable_execution.cli import main as cli_main

    cli_main(["demo", *sys.argv[1:]])


if __name__ == "__main__":
    main()
