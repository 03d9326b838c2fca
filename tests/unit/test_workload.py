"""The seed workload module behind the demo checks every value and reports mismatches."""

from __future__ import annotations

from durable_execution._workload import WorkloadReport, run_seed_workload
from durable_execution.demo import summarize
from durable_execution.storage import InMemoryStorage


async def test_seed_workload_passes_on_memory() -> None:
    report = await run_seed_workload(InMemoryStorage(), background_process_intra_batch_sleep_ms=50)
    assert report.failures == []
    assert len(report.checks) > 400
    # 16 (tree) + 100 + retry + failing + 2 (failing child) + 3 (failing finalize: parent,
    # a1_again, finalize) + 251 (parent and its children).
    assert report.executions == 16 + 100 + 1 + 1 + 2 + 3 + 251
    assert report.statuses["completed"] == report.executions - 5
    assert "result: OK" in summarize(report, "memory")


def test_report_records_mismatches() -> None:
    report = WorkloadReport()
    report.expect("same", 1, 1)
    report.expect("different", 1, 2)
    assert not report.ok
    assert [check.name for check in report.failures] == ["different"]
    assert "expected 2, got 1" in report.failures[0].detail
    assert "FAILED different" in summarize(report, "memory")
