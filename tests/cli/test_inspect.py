"""``list`` and ``stats`` print what the database holds: newest first, filtered, paged, counted."""

from __future__ import annotations

import json
import re

from ._data import CHILDREN, make_finished, make_ready
from ._support import cli

# make_finished: mixed (children_tasks_failed) with double (completed) and explode (failed);
# many (completed) with CHILDREN doubles (completed).
TOTAL = 3 + 1 + CHILDREN


def rows(out: str) -> list[str]:
    """The execution lines of a ``list`` table."""
    return [line for line in out.splitlines() if re.match(r"te_\w{24} ", line)]


async def test_list_is_newest_first_with_statuses_and_errors(db_url: str) -> None:
    ids = await make_finished(db_url)
    top = cli("list", "--db", db_url, "--top-level")
    assert top.returncode == 0, top.stderr
    assert [line.split()[:3] for line in rows(top.stdout)] == [
        [ids["many"], "many", "completed"],
        [ids["mixed"], "mixed", "children_tasks_failed"],
    ]
    assert "1 to 2 of 2 (page 1 of 1)" in top.stdout
    assert re.search(
        rf"{ids['mixed']} +mixed +children_tasks_failed .* ValueError: boom 7$", top.stdout, re.M
    )

    failed = cli("list", "--db", db_url, "--status", "failed")
    assert failed.returncode == 0, failed.stderr
    [line] = rows(failed.stdout)
    assert re.match(
        r"te_\w{24} +explode \(child\) +failed +\d{4}-\d\d-\d\d [\d:]{8} +\d+ ms +"
        r"ValueError: boom 7",
        line,
    )


async def test_list_pages_and_filters_by_task(db_url: str) -> None:
    await make_finished(db_url)
    first = cli("list", "--db", db_url, "--task", "double", "--limit", "10")
    assert first.returncode == 0, first.stderr
    assert len(rows(first.stdout)) == 10
    assert f"1 to 10 of {CHILDREN + 1} (page 1 of 4); next page: add --page 2" in first.stdout
    last = cli("list", "--db", db_url, "--task", "double", "--limit", "10", "--page", "4")
    assert last.returncode == 0, last.stderr
    assert len(rows(last.stdout)) == 1
    assert f"31 to 31 of {CHILDREN + 1} (page 4 of 4)" in last.stdout
    # The oldest double is the child of mixed: the last row of the last page.
    assert "double (child)" in rows(last.stdout)[0]
    past = cli("list", "--db", db_url, "--task", "double", "--limit", "10", "--page", "5")
    assert past.returncode == 1
    assert "Error: page 5 is past the last page (4)" in past.stderr
    none = cli("list", "--db", db_url, "--status", "timed_out")
    assert none.returncode == 0, none.stderr
    assert none.stdout.startswith("No executions match in ")


async def test_list_json(db_url: str) -> None:
    ids = await make_finished(db_url)
    result = cli("list", "--db", db_url, "--status", "active", "--status", "finished", "--json")
    assert result.returncode == 0, result.stderr
    page = json.loads(result.stdout)
    assert (page["page"], page["limit"], page["total"]) == (1, 20, TOTAL)
    executions = page["executions"]
    assert len(executions) == 20
    assert executions[-1]["task_id"] == "double"
    assert all(e["parent_task"]["execution_id"] == ids["many"] for e in executions[:20])


async def test_stats_counts_and_oldest_ready(db_url: str) -> None:
    await make_finished(db_url)
    quiet = cli("stats", "--db", db_url)
    assert quiet.returncode == 0, quiet.stderr
    assert re.search(rf"completed +{CHILDREN + 2}\n", quiet.stdout)
    assert re.search(r"failed +1\n", quiet.stdout)
    assert re.search(r"children_tasks_failed +1\n", quiet.stdout)
    assert re.search(r"ready +0\n", quiet.stdout)
    assert re.search(rf"total +{TOTAL}\n", quiet.stdout)
    assert quiet.stdout.rstrip().endswith("No execution is ready.")

    ready = await make_ready(db_url)
    waiting = cli("stats", "--db", db_url)
    assert waiting.returncode == 0, waiting.stderr
    assert re.search(r"ready +1\n", waiting.stdout)
    assert re.search(rf"Oldest ready execution: waits {ready}, waiting \d", waiting.stdout)

    as_json = cli("stats", "--db", db_url, "--task", "double", "--json")
    assert as_json.returncode == 0, as_json.stderr
    figures = json.loads(as_json.stdout)
    assert figures["counts"]["completed"] == CHILDREN + 1
    assert figures["total"] == CHILDREN + 1
    assert figures["oldest_ready"] is None
