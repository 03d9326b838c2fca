"""Idempotency keys hold across processes: 4 processes x 100 enqueues of one key → 1 execution.

Each process (``_enqueue_main.py``) waits for a common start signal, then enqueues the same key
100 times through concurrent ``enqueue_task`` calls and ``enqueue_tasks`` batches, on one SQLite
file or one PostgreSQL database. The unique index and the conflict-tolerant insert, not any
process's memory, must make all 400 handles point at one stored execution, which then runs once.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from durable_execution import DurableExecutor, TaskContext
from durable_execution.storage import DurableStorage

from ._worker_processes import REPO, all_records

SCRIPT = Path(__file__).with_name("_enqueue_main.py")
PROCESSES = 4
ENQUEUES = 100


def once(ctx: TaskContext, value: int) -> int:
    return value


def _enqueue_in_processes(db_url: str, tmp_path: Path) -> list[list[str]]:
    """Start the processes, give them the signal together, and collect what each printed."""
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    procs = [
        subprocess.Popen(
            [sys.executable, str(SCRIPT), db_url, "order-42", str(ENQUEUES), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=REPO,
        )
        for _ in range(PROCESSES)
    ]
    go.touch()
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        outputs.append(out.decode().split())
    return outputs


async def test_processes_enqueuing_one_key_store_one_execution(
    storage: DurableStorage, db_url: str, tmp_path: Path
) -> None:
    outputs = await asyncio.to_thread(_enqueue_in_processes, db_url, tmp_path)
    assert [len(ids) for ids in outputs] == [ENQUEUES] * PROCESSES
    handed_out = {execution_id for ids in outputs for execution_id in ids}
    records = await all_records(storage)
    assert len(records) == 1, records
    assert handed_out == {records[0].execution_id}
    assert records[0].idempotency_key == "order-42"

    # And it runs once: a handle from any process waits for that one execution.
    executor = DurableExecutor(storage)
    task = executor.task(id="idempotent", timeout_ms=5000, run=once)
    async with executor:
        handle = await executor.get_task_handle(task, records[0].execution_id)
        execution = await handle.wait_and_get_finished_execution(timeout_ms=30_000)
        assert execution.status == "completed"
    assert [r.status for r in await all_records(storage)] == ["completed"]
