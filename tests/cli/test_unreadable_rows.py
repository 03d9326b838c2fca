"""``list``, ``show`` and ``stats`` keep working when a row cannot be decoded: it is shown as
unreadable (its id and why) in its place, and every other row is shown as usual."""

from __future__ import annotations

import json
import sqlite3

import psycopg

from durable_execution.storage.url import PostgresUrl, SqliteUrl, parse_storage_url

from ._data import make_finished, make_ready
from ._support import cli

TABLE = "durable_task_executions"


def _corrupt_timestamp(db_url: str, execution_id: str, column: str) -> None:
    """Store a timestamp Python's datetime cannot hold (after the year 9999)."""
    target = parse_storage_url(db_url)
    if isinstance(target, SqliteUrl):
        conn = sqlite3.connect(target.path)
        with conn:
            conn.execute(
                f"UPDATE {TABLE} SET {column} = ? WHERE execution_id = ?", (2**62, execution_id)
            )
        conn.close()
        return
    assert isinstance(target, PostgresUrl)
    with psycopg.connect(target.conninfo, autocommit=True) as pg:
        pg.execute(
            f"UPDATE {TABLE} SET {column} = '20000-01-01 00:00:00+00' WHERE execution_id = %s",
            (execution_id,),
        )


def _child_of(db_url: str, parent_id: str, task_id: str) -> str:
    shown = cli("show", parent_id, "--db", db_url, "--json")
    assert shown.returncode == 0, shown.stderr
    [child] = [c for c in json.loads(shown.stdout)["children"] if c["task_id"] == task_id]
    return str(child["execution_id"])


async def test_list_show_and_stats_show_an_unreadable_row_and_the_rest(db_url: str) -> None:
    ids = await make_finished(db_url)
    child = _child_of(db_url, ids["mixed"], "explode")
    _corrupt_timestamp(db_url, child, "created_at")
    ready = await make_ready(db_url)
    _corrupt_timestamp(db_url, ready, "start_at")
    why = "has a malformed created_at"

    listed = cli("list", "--db", db_url, "--json", "--limit", "100")
    assert listed.returncode == 0, listed.stderr
    executions = json.loads(listed.stdout)["executions"]
    unreadable = {e["execution_id"]: e["unreadable"] for e in executions if "unreadable" in e}
    assert set(unreadable) == {child, ready}
    assert why in unreadable[child]
    assert "has a malformed start_at" in unreadable[ready]
    assert len(executions) == json.loads(listed.stdout)["total"]  # every other row is there
    table = cli("list", "--db", db_url, "--status", "failed", COLUMNS="200")
    assert table.returncode == 0, table.stderr
    [line] = [line for line in table.stdout.splitlines() if line.startswith(child)]
    assert "unreadable" in line
    assert "malformed created_at" in line

    shown = cli("show", ids["mixed"], "--db", db_url, COLUMNS="200")
    assert shown.returncode == 0, shown.stderr
    assert f"unreadable: Stored execution {child} {why}" in shown.stdout
    assert "double" in shown.stdout  # the readable child is still shown
    as_json = cli("show", ids["mixed"], "--db", db_url, "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert [u["execution_id"] for u in json.loads(as_json.stdout)["unreadable"]] == [child]
    alone = cli("show", child, "--db", db_url)
    assert alone.returncode == 1
    assert f"Stored execution {child} {why}" in alone.stderr

    stats = cli("stats", "--db", db_url, COLUMNS="200")
    assert stats.returncode == 0, stats.stderr
    assert f"The oldest ready execution, {ready}, is unreadable" in stats.stdout
    stats_json = cli("stats", "--db", db_url, "--json")
    assert stats_json.returncode == 0, stats_json.stderr
    assert json.loads(stats_json.stdout)["oldest_ready"]["execution_id"] == ready
