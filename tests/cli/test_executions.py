"""``show``, ``cancel`` and ``migrate`` print what the database holds and change only that."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime

from durable_execution import (
    DurableExecutor,
    RetryOptions,
    TaskContext,
    TaskEnqueueOptions,
    open_storage,
)
from durable_execution.ids import generate_execution_id
from durable_execution.storage import TaskExecutionRecord

from ._data import CHILDREN, make_finished, make_ready
from ._support import cli


async def status_of(db: str, execution_id: str) -> str:
    async with open_storage(db, migrate=False) as storage, storage.transaction() as tx:
        [row] = await tx.get_task_executions([execution_id])
    return row.status


async def test_show_prints_the_tree_with_statuses_timings_and_errors(db_url: str) -> None:
    ids = await make_finished(db_url)
    result = cli("show", ids["mixed"], "--db", db_url)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(rf"execution\s+{ids['mixed']}", out)
    assert re.search(r"task\s+mixed", out)
    assert re.search(r"status\s+children_tasks_failed", out)
    assert re.search(r"run output\s+\"started two\"", out)
    assert re.search(r"children\s+2 \(1 completed\)", out)
    assert re.search(
        r"child 1 \(explode te_\w{24}\): ValueError: boom 7 \(generic, retryable\)", out
    )
    # The tree: the parent, then each child with its status, time and error.
    assert re.search(rf"mixed {ids['mixed']} children_tasks_failed  \d+ ms", out)
    assert re.search(r"\[0\] double te_\w{24} completed  \d+ ms", out)
    assert re.search(r"\[1\] explode te_\w{24} failed  \d+ ms\n.*error: ValueError: boom 7", out)
    # A parent's copy of a child's error has no traceback; the child's own `show` has it.
    assert "traceback" not in out


async def test_show_summarises_many_children_unless_asked_for_all(db_url: str) -> None:
    ids = await make_finished(db_url)
    short = cli("show", ids["many"], "--db", db_url)
    assert short.returncode == 0, short.stderr
    assert short.stdout.count(" double te_") == 20
    assert f"… {CHILDREN - 20} more children: {CHILDREN - 20} completed" in short.stdout
    full = cli("show", ids["many"], "--db", db_url, "--all")
    assert full.returncode == 0, full.stderr
    assert full.stdout.count(" double te_") == CHILDREN
    assert "more children" not in full.stdout


async def test_show_json_gives_every_stored_field(db_url: str) -> None:
    ids = await make_finished(db_url)
    result = cli("show", ids["mixed"], "--db", db_url, "--json")
    assert result.returncode == 0, result.stderr
    tree = json.loads(result.stdout)
    assert tree["execution_id"] == ids["mixed"]
    assert tree["status"] == "children_tasks_failed"
    assert tree["run_output"] == "started two"
    assert [child["task_id"] for child in tree["children"]] == ["double", "explode"]
    double, explode = tree["children"]
    assert (double["status"], double["output"], double["run_input"]) == ("completed", 42, 21)
    traceback = explode["error"].pop("traceback")
    assert explode["error"] == {
        "error_type": "generic",
        "message": "ValueError: boom 7",
        "is_retryable": True,
        "is_internal": False,
        "exception_type": "ValueError",
    }
    assert traceback.startswith("Traceback (most recent call last):\n")
    assert 'raise ValueError(f"boom {value}")' in traceback
    assert traceback.endswith("\nValueError: boom 7\n")
    assert explode["parent_task"]["execution_id"] == ids["mixed"]
    assert tree["children_tasks_errors"][0]["error"]["message"] == "ValueError: boom 7"
    assert tree["children_tasks_errors"][0]["error"]["traceback"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", tree["finished_at"])


async def test_show_prints_the_traceback_under_the_error(db_url: str) -> None:
    ids = await make_finished(db_url)
    listed = cli("show", ids["mixed"], "--db", db_url, "--json")
    assert listed.returncode == 0, listed.stderr
    explode_id = json.loads(listed.stdout)["children"][1]["execution_id"]
    result = cli("show", explode_id, "--db", db_url)
    assert result.returncode == 0, result.stderr
    out = "\n".join(line.rstrip() for line in result.stdout.splitlines()) + "\n"
    assert re.search(
        r"errors\s+error: ValueError: boom 7 \(generic, retryable\)\n"
        r"traceback\s+Traceback \(most recent call last\):\n",
        out,
    ), out
    assert re.search(r"\n\s+File \".*_data\.py\", line \d+, in explode\n", out), out
    assert re.search(r'\n\s+raise ValueError\(f"boom \{value\}"\)\n\s+ValueError: boom 7\n', out), (
        out
    )


async def test_cancel_a_ready_execution_then_again(db_url: str) -> None:
    execution_id = await make_ready(db_url)
    assert await status_of(db_url, execution_id) == "ready"
    first = cli("cancel", execution_id, "--db", db_url)
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"Cancelled waits {execution_id} (it was ready).\n"
    assert await status_of(db_url, execution_id) == "cancelled"
    again = cli("cancel", execution_id, "--db", db_url)
    assert again.returncode == 0, again.stderr
    assert again.stdout == (
        f"waits {execution_id} had already finished (cancelled); nothing changed.\n"
    )


async def test_cancel_and_show_refuse_unknown_and_malformed_ids(db_url: str) -> None:
    await make_ready(db_url)  # the schema exists, the id does not
    unknown = "te_" + "A" * 24
    for command in ("show", "cancel"):
        result = cli(command, unknown, "--db", db_url)
        assert result.returncode == 1
        assert f"Error: execution {unknown} not found in " in result.stderr
        malformed = cli(command, "12345", "--db", db_url)
        assert malformed.returncode == 1
        assert "Error: '12345' is not an execution id" in malformed.stderr


async def test_migrate_creates_the_schema_once(db_url: str) -> None:
    first = cli("migrate", "--db", db_url)
    assert first.returncode == 0, first.stderr
    assert re.fullmatch(r"Applied migration\(s\) 1(, \d+)* to .+\.\n", first.stdout)
    again = cli("migrate", "--db", db_url)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("The schema of ")
    assert again.stdout.endswith(" is up to date.\n")
    # The schema is usable: an execution can be stored and read back through the CLI.
    execution_id = await make_ready(db_url)
    shown = cli("show", execution_id, "--db", db_url)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"status\s+ready", shown.stdout)


async def test_a_custom_table_is_separate(db_url: str) -> None:
    ids = await make_finished(db_url)
    other = cli("migrate", "--db", db_url, "--table", "other_executions")
    assert other.returncode == 0, other.stderr
    result = cli("show", ids["mixed"], "--db", db_url, "--table", "other_executions")
    assert result.returncode == 1
    assert "(table other_executions)" in result.stderr
    # The environment variables stand in for the options.
    via_env = cli("show", ids["mixed"], DURABLE_EXECUTION_DB=db_url)
    assert via_env.returncode == 0, via_env.stderr


async def test_show_names_the_queue_and_the_concurrency_key(db_url: str) -> None:
    now = datetime.now(UTC)
    common = {
        "retry_options": RetryOptions(max_attempts=0),
        "sleep_ms_before_run": 0,
        "timeout_ms": 1_000,
        "run_input": "1",
        "status": "ready",
        "start_at": now,
        "created_at": now,
        "updated_at": now,
    }
    keyed = TaskExecutionRecord(
        task_id="mail",
        execution_id=generate_execution_id(),
        queue="emails",
        concurrency_key="customer-7",
        concurrency_limit=2,
        **common,  # type: ignore[arg-type]
    )
    pooled = replace(keyed, execution_id=generate_execution_id(), concurrency_key="")
    async with open_storage(db_url) as storage, storage.transaction() as tx:
        await tx.insert_task_executions([keyed, pooled])
    shown = cli("show", keyed.execution_id, "--db", db_url)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"queue\s+emails", shown.stdout)
    assert re.search(r"concurrency\s+key 'customer-7', at most 2 running", shown.stdout)
    pool = cli("show", pooled.execution_id, "--db", db_url)
    assert re.search(r"concurrency\s+key none \(task-wide\), at most 2 running", pool.stdout)
    as_json = json.loads(cli("show", keyed.execution_id, "--db", db_url, "--json").stdout)
    assert (as_json["queue"], as_json["concurrency_key"], as_json["concurrency_limit"]) == (
        "emails",
        "customer-7",
        2,
    )


async def test_show_prints_the_priority_and_the_idempotency_key(db_url: str) -> None:
    async with open_storage(db_url) as storage:
        executor = DurableExecutor(storage)

        @executor.task(id="keyed", timeout_ms=5_000)
        def keyed(ctx: TaskContext, value: str) -> str:
            return value

        options = TaskEnqueueOptions(idempotency_key="[bold]order-42[/bold]", priority=7)
        execution_id = (await executor.enqueue_task(keyed, "input", options)).execution_id
    result = cli("show", execution_id, "--db", db_url)
    assert result.returncode == 0, result.stderr
    assert re.search(r"priority\s+7 *\n", result.stdout)
    # As stored: Rich markup in a key is not interpreted.
    assert re.search(r"idempotency key\s+\[bold\]order-42\[/bold\] *\n", result.stdout)
    as_json = json.loads(cli("show", execution_id, "--db", db_url, "--json").stdout)
    assert (as_json["priority"], as_json["idempotency_key"]) == (7, "[bold]order-42[/bold]")
