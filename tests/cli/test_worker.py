"""``durable-execution worker``: runs what other processes enqueue, stops cleanly on signals."""

from __future__ import annotations

import asyncio
import re
import secrets
import signal
from pathlib import Path

import psycopg
import pytest

from durable_execution import DurableExecutor, TaskExecution, open_storage

from ._support import APP_DIR, cli, running_worker, sqlite_url
from .cli_app import register

FAST = ("--poll-interval-ms", "50")


async def enqueue(db: str, task: str, *inputs: object) -> list[str]:
    """Enqueue from this (test) process, as an application would; returns the execution ids."""
    async with open_storage(db) as storage:
        executor = DurableExecutor(storage)  # never started: only the worker runs tasks
        tasks = register(executor)
        chosen = getattr(tasks, task)
        return [(await executor.enqueue_task(chosen, value)).execution_id for value in inputs]


async def finished(db: str, execution_ids: list[str]) -> list[TaskExecution[object]]:
    async with open_storage(db) as storage:
        executor = DurableExecutor(storage)
        tasks = register(executor)
        results: list[TaskExecution[object]] = []
        for execution_id in execution_ids:
            handle = await executor.get_task_handle(tasks.echo, execution_id)
            results.append(
                await handle.wait_and_get_finished_execution(
                    polling_interval_ms=50, timeout_ms=30_000
                )
            )
        return results


async def current(db: str, task: str, execution_id: str) -> TaskExecution[object]:
    async with open_storage(db, migrate=False) as storage:
        executor = DurableExecutor(storage)
        chosen = getattr(register(executor), task)
        handle = await executor.get_task_handle(chosen, execution_id)
        return await handle.get_execution()


async def test_worker_runs_tasks_enqueued_by_another_process_and_stops_on_sigterm(
    db_url: str, tmp_path: Path
) -> None:
    with running_worker(tmp_path, db_url, "--concurrency", "4", *FAST) as worker:
        ids = await enqueue(db_url, "echo", "a", "b", "c")
        results = await finished(db_url, ids)
        worker.signal(signal.SIGTERM)
        status = worker.wait()
    log = worker.log()
    assert status == 0, log
    assert [(r.status, getattr(r, "output", None)) for r in results] == [
        ("completed", "echo: a"),
        ("completed", "echo: b"),
        ("completed", "echo: c"),
    ]
    line = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO +\[\d+\] "
    assert re.search(
        line + r"durable_execution\.worker: Worker started: app cli_app:register, "
        r"tasks echo, slow, until_cancelled, concurrency 4, storage ",
        log,
    ), log
    assert re.search(line + r"cli_app: echo b", log), log  # the app's own logs, same format
    assert "Received SIGTERM: shutting down" in log
    assert log.rstrip().endswith("durable_execution.worker: Worker stopped"), log
    assert "Traceback" not in log


async def test_sigint_stops_the_worker_too(tmp_path: Path) -> None:
    with running_worker(tmp_path, sqlite_url(tmp_path / "w.db"), *FAST) as worker:
        worker.signal(signal.SIGINT)
        assert worker.wait() == 0, worker.log()
    assert "Received SIGINT: shutting down" in worker.log()


async def test_shutdown_waits_for_running_executions(db_url: str, tmp_path: Path) -> None:
    with running_worker(tmp_path, db_url, *FAST) as worker:
        [execution_id] = await enqueue(db_url, "slow", 1.5)
        worker.wait_for_log(f"slow started {execution_id}")
        worker.signal(signal.SIGTERM)
        status = worker.wait()
    log = worker.log()
    assert status == 0, log
    assert "shutting down once 1 running execution(s) finish" in log
    assert log.index(f"slow finished {execution_id}") < log.index("Worker stopped")
    execution = await current(db_url, "slow", execution_id)
    assert execution.status == "completed"
    assert execution.output == "slept 1.5"


async def test_a_second_signal_stops_at_once_and_abandons_the_run(tmp_path: Path) -> None:
    db = sqlite_url(tmp_path / "w.db")
    with running_worker(tmp_path, db, *FAST) as worker:
        [execution_id] = await enqueue(db, "slow", 60)
        worker.wait_for_log(f"slow started {execution_id}")
        worker.signal(signal.SIGTERM)
        worker.wait_for_log("send it again to stop at once")
        worker.signal(signal.SIGTERM)
        status = worker.wait(timeout=10)
    assert status == 1
    assert "stopping now; 1 running execution(s) abandoned" in worker.log()
    # Like a crash: the row stays running until its lease expires and another worker retries it.
    assert (await current(db, "slow", execution_id)).status == "running"


async def test_cli_cancel_stops_a_run_in_a_worker(db_url: str, tmp_path: Path) -> None:
    with running_worker(tmp_path, db_url, *FAST) as worker:
        [execution_id] = await enqueue(db_url, "until_cancelled", None)
        worker.wait_for_log(f"until_cancelled started {execution_id}")
        result = cli("cancel", execution_id, "--db", db_url)
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"Cancelled until_cancelled {execution_id} (it was running).\n"
        worker.wait_for_log(f"until_cancelled stopped {execution_id}")
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0, worker.log()
    execution = await current(db_url, "until_cancelled", execution_id)
    assert execution.status == "cancelled"
    shown = cli("show", execution_id, "--db", db_url)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"status\s+cancelled", shown.stdout)
    assert "error: Task cancelled (cancelled" in shown.stdout


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ("cli_app", "APP 'cli_app' is not of the form module:function"),
        ("no_such_module:register", "cannot import 'no_such_module': no module named"),
        ("cli_app:missing", "APP 'cli_app:missing': 'cli_app' has no attribute 'missing'"),
        (
            "broken_app:register",
            "importing 'broken_app' failed: RuntimeError: this module is broken on purpose (",
        ),
        ("cli_app:NOT_CALLABLE", "APP 'cli_app:NOT_CALLABLE' is a int, not a function"),
        ("cli_app:Tasks", "must take exactly one argument, the executor"),
        ("cli_app:register_nothing", "cli_app:register_nothing registered no tasks"),
        (
            "cli_app:register_badly",
            "cli_app:register_badly failed while registering tasks: RuntimeError: no tasks today",
        ),
    ],
)
def test_an_app_that_cannot_be_used_is_a_clear_error(
    app: str, message: str, tmp_path: Path
) -> None:
    result = cli("worker", app, "--app-dir", str(APP_DIR), "--db", sqlite_url(tmp_path / "w.db"))
    assert result.returncode == 1, result.stderr
    last_line = result.stderr.splitlines()[-1]
    assert last_line.startswith("Error: ")
    assert message in last_line
    if app == "cli_app:register_badly":
        # The user's own code raised: the log keeps the traceback that points into it.
        assert "Traceback" in result.stderr
        assert "cli_app.py" in result.stderr
    else:
        assert "Traceback" not in result.stderr


async def test_worker_passes_the_executor_options_it_is_given(tmp_path: Path) -> None:
    options = ("--expire-ms", "1234", "--max-lease-expiries", "0")
    more = ("--max-serialized-size-bytes", "2048")
    with running_worker(tmp_path, sqlite_url(tmp_path / "o.db"), *options, *more, *FAST) as worker:
        worker.wait_for_log("Executor options:")
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0
    assert (
        "Executor options: expire_ms 1234, max_lease_expiries None, "
        "max_serialized_size_bytes 2048, poll_interval_ms " in worker.log()
    ), worker.log()


def test_worker_refuses_bad_options(tmp_path: Path) -> None:
    result = cli("worker", "cli_app:register", "--concurrency", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert "Invalid value for '--concurrency'" in result.stderr
    for option, value in (
        ("--expire-ms", "0"),
        ("--expire-ms", str(2**41)),
        ("--poll-interval-ms", str(2**41)),
        ("--concurrency", str(2**31)),
        ("--max-lease-expiries", "-1"),
        ("--max-serialized-size-bytes", str(2**31)),
    ):
        result = cli("worker", "cli_app:register", option, value, cwd=tmp_path)
        assert result.returncode == 2, (option, value)
        assert f"Invalid value for '{option}'" in result.stderr
        assert "Traceback" not in result.stderr
    result = cli("worker", "cli_app:register", "--db", "memory://", cwd=tmp_path)
    assert result.returncode == 2
    assert "memory:// storage lives and dies inside one process" in result.stderr


async def test_worker_with_retention_prunes_what_it_ran(db_url: str, tmp_path: Path) -> None:
    with running_worker(tmp_path, db_url, "--retention", "1s", *FAST) as worker:
        worker.wait_for_log("retention 0:00:01")
        ids = await enqueue(db_url, "echo", "a", "b")
        await finished(db_url, ids)
        worker.wait_for_log("Retention pruned")
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0, worker.log()
    async with open_storage(db_url, migrate=False) as storage, storage.transaction() as tx:
        assert await tx.get_task_executions(ids) == []


def test_worker_refuses_a_bad_retention(tmp_path: Path) -> None:
    for value, reason in (("0s", "longer than zero"), ("banana", "is not a duration")):
        result = cli("worker", "cli_app:register", "--retention", value, cwd=tmp_path)
        assert result.returncode == 2, value
        assert "Invalid value for '--retention'" in result.stderr
        assert reason in result.stderr
        assert "Traceback" not in result.stderr


def _listening_sessions(url: str, table: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND query ILIKE %s",
            [f"LISTEN%{table}%"],
        ).fetchone()
    assert row is not None
    count: int = row[0]
    return count


@pytest.mark.parametrize("listen", [True, False], ids=["listen", "no-listen"])
async def test_worker_no_listen_opens_no_listen_session_and_still_runs_work(
    postgres_url: str, tmp_path: Path, listen: bool
) -> None:
    table = f"t_{secrets.token_hex(6)}"  # the channel is per table name, database-wide
    flag = "--listen" if listen else "--no-listen"
    with running_worker(tmp_path, postgres_url, "--table", table, flag, *FAST) as worker:
        if listen:
            await eventually_listening(postgres_url, table)
        async with open_storage(postgres_url, table_name=table) as storage:
            executor = DurableExecutor(storage)
            echo = register(executor).echo
            handle = await executor.enqueue_task(echo, "polled")
            done = await handle.wait_and_get_finished_execution(
                polling_interval_ms=50, timeout_ms=30_000
            )
        assert done.status == "completed", worker.log()
        assert _listening_sessions(postgres_url, table) == (1 if listen else 0)
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0, worker.log()


async def eventually_listening(url: str, table: str) -> None:
    async with asyncio.timeout(30):  # pg_stat_activity cannot be awaited: poll it
        while True:
            if _listening_sessions(url, table):
                return
            await asyncio.sleep(0.05)


def test_worker_no_listen_on_sqlite_is_a_clear_error(tmp_path: Path) -> None:
    db = sqlite_url(tmp_path / "n.db")
    app = ("cli_app:register", "--app-dir", str(APP_DIR))
    result = cli("worker", *app, "--db", db, "--no-listen", cwd=tmp_path)
    assert result.returncode != 0
    assert "listen does not apply to sqlite" in result.stderr
    assert "Traceback" not in result.stderr
