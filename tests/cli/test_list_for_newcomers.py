"""``list`` as a newcomer meets it: right after ``make demo``, and in an 80-column terminal.

The demo writes to its own table (``durable_demo``) in ``durable_execution.db``; ``list`` without
``--table`` reads the default table. It must show the demo's executions (the only table there),
or say which ``--table`` to use; and its rows must never wrap at 80 columns.
"""

from __future__ import annotations

import re
from pathlib import Path

from durable_execution import DurableExecutor, TaskContext, open_storage

from ._support import cli, sqlite_url

LONG_TASK_ID = "a_task_whose_identifier_is_rather_long_for_a_table"


async def _run_tasks(db: str, table: str) -> None:
    async with open_storage(db, table_name=table) as storage:
        executor = DurableExecutor(storage, background_process_intra_batch_sleep_ms=50)

        def run(ctx: TaskContext, value: int) -> int:
            if value % 2:
                raise ValueError(f"a failure whose message is long enough to be cut {value}" * 3)
            return value

        task = executor.task(id=LONG_TASK_ID, timeout_ms=5_000, run=run)
        async with executor:
            handles = [await executor.enqueue_task(task, value) for value in range(4)]
            for handle in handles:
                await handle.wait_and_get_finished_execution(timeout_ms=20_000)


def _rows(out: str) -> list[str]:
    return [line for line in out.splitlines() if re.match(r"te_\w{24} ", line)]


async def test_list_after_the_demo_shows_the_demo_table(tmp_path: Path) -> None:
    await _run_tasks(sqlite_url(tmp_path / "durable_execution.db"), "durable_demo")
    # As after `make demo`: from the directory holding the file, no --db, no --table.
    result = cli("list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(_rows(result.stdout)) == 4
    assert "showing table durable_demo, the only executions table" in result.stderr
    stats = cli("stats", cwd=tmp_path)
    assert stats.returncode == 0, stats.stderr
    assert "(table durable_demo)" in stats.stdout
    execution_id = _rows(result.stdout)[0].split()[0]
    show = cli("show", execution_id, cwd=tmp_path)
    assert show.returncode == 0, show.stderr
    assert execution_id in show.stdout
    assert LONG_TASK_ID in show.stdout


async def test_a_missing_default_table_is_replaced_by_the_only_other(db_url: str) -> None:
    await _run_tasks(db_url, "durable_demo")
    result = cli("list", "--db", db_url)
    assert result.returncode == 0, result.stderr
    assert len(_rows(result.stdout)) == 4
    assert "showing table durable_demo, the only executions table" in result.stderr


async def test_several_other_tables_are_named_not_guessed(db_url: str) -> None:
    await _run_tasks(db_url, "durable_demo")
    await _run_tasks(db_url, "other_app")
    result = cli("list", "--db", db_url)
    assert result.returncode == 1
    assert "Error: table durable_task_executions does not exist in" in result.stderr
    assert (
        "this database has table durable_demo (4 rows), table other_app (4 rows):"
        " try --table durable_demo"
    ) in result.stderr


async def test_list_of_an_empty_default_table_names_the_other_tables(db_url: str) -> None:
    await _run_tasks(db_url, "durable_demo")
    async with open_storage(db_url):
        pass  # creates the (empty) default table
    result = cli("list", "--db", db_url)
    assert result.returncode == 0, result.stderr
    assert _rows(result.stdout) == []
    assert (
        "No executions in table durable_task_executions; this database has table durable_demo"
        " (4 rows): try --table durable_demo"
    ) in result.stderr
    # A table asked for by name is read as asked, silently; so is a non-empty default table.
    explicit = cli("list", "--db", db_url, "--table", "durable_task_executions")
    assert explicit.returncode == 0, explicit.stderr
    assert explicit.stderr == ""
    assert explicit.stdout.startswith("No executions match")
    await _run_tasks(db_url, "durable_task_executions")
    default = cli("list", "--db", db_url)
    assert default.returncode == 0, default.stderr
    assert default.stderr == ""
    assert len(_rows(default.stdout)) == 4


async def test_list_fits_80_columns_without_wrapping(tmp_path: Path) -> None:
    db = sqlite_url(tmp_path / "list.db")
    await _run_tasks(db, "durable_task_executions")
    narrow = cli("list", "--db", db, COLUMNS="80")
    assert narrow.returncode == 0, narrow.stderr
    rows = _rows(narrow.stdout)
    assert len(rows) == 4  # one line each: a wrapped row would start without an id
    lines = [line for line in narrow.stdout.splitlines() if line.strip()]
    assert all(len(line.rstrip()) <= 80 for line in lines), narrow.stdout
    header = lines[0].split()
    assert header[:3] == ["execution", "task", "status"]
    assert "time" in header
    for row in rows:
        task, status = row.split()[1:3]
        assert task.startswith("a_task_")
        assert task.endswith("…")
        assert status in ("completed", "failed")
    wide = cli("list", "--db", db, COLUMNS="200")
    assert wide.returncode == 0, wide.stderr
    assert "error" in wide.stdout.splitlines()[0]
    assert "a failure whose message is long enough" in wide.stdout
