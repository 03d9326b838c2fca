"""``rerun`` enqueues a linked execution that ``show`` points back from; bad ids are refused."""

from __future__ import annotations

import re

from durable_execution import open_storage

from ._data import make_finished, make_ready
from ._support import cli


async def test_rerun_prints_the_new_id_and_show_links_it(db_url: str) -> None:
    ids = await make_finished(db_url)
    result = cli("rerun", ids["mixed"], "--db", db_url)
    assert result.returncode == 0, result.stderr
    new_id = result.stdout.strip()
    assert re.fullmatch(r"te_\w{24}", new_id), result.stdout
    assert f"a rerun of {ids['mixed']}" in result.stderr
    async with open_storage(db_url, migrate=False) as storage, storage.transaction() as tx:
        [row] = await tx.get_task_executions([new_id])
        [original] = await tx.get_task_executions([ids["mixed"]])
    assert (row.task_id, row.status, row.rerun_of) == ("mixed", "ready", ids["mixed"])
    assert row.run_input == original.run_input
    shown = cli("show", new_id, "--db", db_url)
    assert shown.returncode == 0, shown.stderr
    assert re.search(rf"rerun of\s+{ids['mixed']}", shown.stdout)
    as_json = cli("show", new_id, "--json", "--db", db_url)
    assert f'"rerun_of": "{ids["mixed"]}"' in as_json.stdout


async def test_rerun_refuses_active_and_unknown_executions(db_url: str) -> None:
    ready = await make_ready(db_url)
    active = cli("rerun", ready, "--db", db_url)
    assert active.returncode == 1
    assert "is ready: only a finished execution can be rerun" in active.stderr
    missing = cli("rerun", "te_" + "A" * 24, "--db", db_url)
    assert missing.returncode == 1
    assert "not found" in missing.stderr
    bad = cli("rerun", "nonsense", "--db", db_url)
    assert bad.returncode == 1
    assert "is not an execution id" in bad.stderr
