"""The seed workload on every storage backend: the demo's program (``_workload.py``), every value
checked there, so that the workload lives in one place.

It uses an executor with default options except the batch pause, registers tasks after the
executor started, and walks through a 16-execution tree, 100 concurrent tasks, a retry, a
failure, a failing child, a failing finalize and a 250-child fan-out.
"""

from __future__ import annotations

from durable_execution._workload import run_seed_workload
from durable_execution.storage import DurableStorage

# 16 (tree) + 100 + retry + failing + 2 (failing child) + 3 (failing finalize: parent,
# a1_again, finalize) + 251 (parent and its children).
EXECUTIONS = 16 + 100 + 1 + 1 + 2 + 3 + 251


async def test_seed_workload(storage: DurableStorage) -> None:
    report = await run_seed_workload(storage, background_process_intra_batch_sleep_ms=500)
    assert [f"{check.name}: {check.detail}" for check in report.failures] == []
    assert len(report.checks) > 400
    assert report.executions == EXECUTIONS
    assert report.statuses["completed"] == EXECUTIONS - 5
