"""``durable-execution demo``: the seed workload succeeds and the database shows it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from durable_execution import DurableExecutor, TaskContext, open_storage

from ._support import cli, cli_env, sqlite_url

EXECUTIONS = 374  # 16 (tree) + 100 + 1 + 1 + 2 + 3 + 251


def check_success(out: str) -> str:
    """Assert the demo's report says every check passed; returns the root execution id."""
    passed = re.search(r"checks passed: +(\d+)/(\d+)", out)
    assert passed is not None, out
    assert passed.group(1) == passed.group(2)
    assert int(passed.group(1)) > 400
    assert f"executions stored: {EXECUTIONS} (" in out
    assert "result: OK" in out
    for step in ("task tree (16 executions)", "100/100", "250/250"):
        assert step in out
    assert re.search(r"^root completed  \d", out, re.MULTILINE)
    assert re.search(r"└── finalize rootFinalize completed", out)
    assert "100 concurrent tasks t0…t99: 100 completed" in out
    assert re.search(r"retry completed  \d+ ms  after 2 retries", out)
    assert re.search(
        r"failing failed .*\n.*error: RuntimeError: Failed \(generic, retryable\)", out
    )
    assert re.search(r"parentWithFailingChild children_tasks_failed", out)
    assert re.search(r"parentWithFailingFinalizeTask finalize_task_failed", out)
    assert "… 245 more children: 245 completed" in out
    root = re.search(r"Look again with: durable-execution show (te_\w{24}) ", out)
    assert root is not None, out
    return root.group(1)


def test_demo_on_the_default_sqlite_file(tmp_path: Path) -> None:
    result = cli("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "on sqlite:///durable_execution.db (table durable_demo)" in result.stdout
    root = check_success(result.stdout)
    assert (tmp_path / "durable_execution.db").exists()
    # What it printed is in the database: show reads the same tree back.
    shown = cli("show", root, "--table", "durable_demo", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"status\s+completed", shown.stdout)
    assert "finalize rootFinalize te_" in shown.stdout
    # A second run on the same file succeeds too and counts only its own executions.
    again = cli("demo", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    check_success(again.stdout)


def test_demo_on_postgresql(postgres_url: str) -> None:
    result = cli("demo", "--db", postgres_url)
    assert result.returncode == 0, result.stdout + result.stderr
    check_success(result.stdout)


def app_task_run(ctx: TaskContext, value: None) -> None:
    return None


async def test_demo_never_touches_the_application_table(tmp_path: Path) -> None:
    db = sqlite_url(tmp_path / "app.db")
    async with open_storage(db) as storage:
        executor = DurableExecutor(storage)
        app_task = executor.task(id="app_task", timeout_ms=1000, run=app_task_run)
        execution_id = (await executor.enqueue_task(app_task)).execution_id
    result = cli("demo", "--db", db)
    assert result.returncode == 0, result.stdout + result.stderr
    # The demo's executor ran on the same file but in its own table: the app's execution (of a
    # task the demo does not know) is still waiting for the app's workers.
    async with open_storage(db) as storage:
        executor = DurableExecutor(storage)
        app_task = executor.task(id="app_task", timeout_ms=1000, run=app_task_run)
        handle = await executor.get_task_handle(app_task, execution_id)
        assert (await handle.get_execution()).status == "ready"


def test_python_dash_m_demo_runs_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "durable_execution.demo", "--db", "memory://"],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "result: OK" in result.stdout
    assert "Look again" not in result.stdout  # nothing is left to look at in memory
