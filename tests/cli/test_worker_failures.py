"""A worker survives what its tasks raise, and says so in logs an operator can use."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from durable_execution import DurableExecutor, TaskExecution, open_storage

from ._support import cli, running_worker
from .failing_app import register

APP = ("--poll-interval-ms", "50")


async def _enqueue(db: str, task: str, value: object) -> str:
    async with open_storage(db) as storage:
        executor = DurableExecutor(storage)  # never started: the worker runs the tasks
        chosen = getattr(register(executor), task)
        return (await executor.enqueue_task(chosen, value)).execution_id


async def _finished(db: str, task: str, execution_id: str) -> TaskExecution[object]:
    async with open_storage(db, migrate=False) as storage:
        executor = DurableExecutor(storage)
        chosen = getattr(register(executor), task)
        handle = await executor.get_task_handle(chosen, execution_id)
        return await handle.wait_and_get_finished_execution(
            polling_interval_ms=50, timeout_ms=30_000
        )


async def test_sys_exit_in_a_task_fails_it_and_the_worker_completes_the_others(
    db_url: str, tmp_path: Path
) -> None:
    with running_worker(tmp_path, db_url, *APP, app="failing_app:register") as worker:
        slow_id = await _enqueue(db_url, "slow", 2.0)
        worker.wait_for_log(f"slow started {slow_id}")
        exits_id = await _enqueue(db_url, "exits", 7)
        exited = await _finished(db_url, "exits", exits_id)
        slow = await _finished(db_url, "slow", slow_id)
        assert worker.process.poll() is None, worker.log()  # still up
        worker.signal(signal.SIGTERM)
        status = worker.wait()
    log = worker.log()
    assert status == 0, log
    assert exited.status == "failed"
    assert exited.error.message == "SystemExit: 7"
    assert exited.error.exception_type == "SystemExit"
    assert slow.status == "completed", log
    assert f"Execution {exits_id} of task exits failed: SystemExit: 7" in log
    assert log.rstrip().endswith("durable_execution.worker: Worker stopped"), log


async def test_json_logs_are_one_object_per_line_with_the_execution_fields(
    db_url: str, tmp_path: Path
) -> None:
    with running_worker(
        tmp_path, db_url, *APP, "--log-format", "json", app="failing_app:register"
    ) as worker:
        execution_id = await _enqueue(db_url, "lookup", "sku")
        execution = await _finished(db_url, "lookup", execution_id)
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0, worker.log()
    assert execution.status == "failed"
    entries = [json.loads(line) for line in worker.log().splitlines()]  # every line is JSON
    assert all({"time", "level", "logger", "message", "pid"} <= set(entry) for entry in entries)
    ours = [entry for entry in entries if entry.get("execution_id") == execution_id]
    assert [(e["logger"], e["level"], e["attempt"]) for e in ours] == [
        ("failing_app", "INFO", 0),  # the app's own record, inside the attempt
        ("durable_execution", "INFO", 0),  # a retry scheduled
        ("failing_app", "INFO", 1),
        ("durable_execution", "WARNING", 1),  # failed for good, with the traceback
    ], entries
    app_record, retry, _, failure = ours
    assert (app_record["message"], app_record["task_id"]) == ("looking up sku", "lookup")
    assert "status" not in app_record
    assert (retry["status"], retry["retry_delay_ms"]) == ("ready", 50)
    assert failure["status"] == "failed"
    assert failure["message"] == f"Execution {execution_id} of task lookup failed: KeyError: 'sku'"
    assert failure["exc_info"].startswith("Traceback (most recent call last):\n")
    assert "failing_app.py" in failure["exc_info"]
    assert failure["exc_info"].endswith("KeyError: 'sku'")
    # And `show` prints the stored traceback under the error.
    shown = cli("show", execution_id, "--db", db_url)
    assert shown.returncode == 0, shown.stderr
    assert "error: KeyError: 'sku' (generic, retryable)" in shown.stdout
    assert "return stock[sku]" in shown.stdout


def test_an_unknown_log_format_is_refused(tmp_path: Path) -> None:
    result = cli("worker", "failing_app:register", "--log-format", "xml", cwd=tmp_path)
    assert result.returncode == 2
    assert "Invalid value for '--log-format'" in result.stderr
