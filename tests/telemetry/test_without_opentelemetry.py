"""Without the ``[otel]`` extra everything works (issue 15): a process in which ``opentelemetry``
cannot be imported runs a parent with children on memory and SQLite and stores no context."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    sys.modules["opentelemetry"] = None  # `import opentelemetry...` now raises ImportError

    from durable_execution import (
        ChildTask, DurableExecutor, InMemoryStorage, ParentTaskResult, open_storage,
    )
    from durable_execution import _telemetry

    assert _telemetry.ENABLED is False

    async def run(storage):
        executor = DurableExecutor(storage, background_process_intra_batch_sleep_ms=50)

        @executor.task(id="child", timeout_ms=10_000)
        async def child(ctx, value):
            return value * 2

        async def run_parent(ctx, value):
            return ParentTaskResult(output=value, children_tasks=[ChildTask(child, 1)])

        parent = executor.parent_task(id="parent", timeout_ms=10_000, run_parent=run_parent)
        async with executor:
            handles = [await executor.enqueue_task(parent, 1)]
            handles += await executor.enqueue_tasks(child, [2, 3])
            for handle in handles:
                execution = await handle.wait_and_get_finished_execution(
                    polling_interval_ms=20, timeout_ms=30_000
                )
                assert execution.status == "completed", execution
        records = await storage.list_task_executions(limit=100)
        assert len(records) == 4, records
        assert {record.trace_context for record in records} == {None}

    async def main():
        await run(InMemoryStorage())
        async with open_storage("sqlite:///" + sys.argv[1]) as storage:
            await run(storage)
        assert "opentelemetry.trace" not in sys.modules
        print("ran without opentelemetry")

    asyncio.run(main())
    """
)


def test_everything_works_when_opentelemetry_cannot_be_imported(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "plain.db")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ran without opentelemetry"
