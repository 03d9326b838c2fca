"""``prune`` deletes finished trees made by a real executor, whole, and says what it deleted."""

from __future__ import annotations

from tests._stored import all_ids

from durable_execution import open_storage

from ._data import CHILDREN, make_finished, make_ready
from ._support import cli


async def stored(db: str) -> set[str]:
    async with open_storage(db, migrate=False) as storage:
        return set(await all_ids(storage))


async def test_prune_deletes_finished_trees_whole_and_keeps_active_ones(db_url: str) -> None:
    await make_finished(db_url)  # two parents: 1 + 2 and 1 + CHILDREN executions
    ready = await make_ready(db_url)
    trees = 2 + 2 + CHILDREN

    dry = cli("prune", "--older-than", "0s", "--dry-run", "--db", db_url)
    assert dry.returncode == 0, dry.stderr
    assert f"would delete {trees} execution(s) in 2 tree(s)" in dry.stdout
    assert "children_tasks_failed 1" in dry.stdout
    assert "failed 1" in dry.stdout
    assert len(await stored(db_url)) == trees + 1

    kept = cli("prune", "--older-than", "7d", "--db", db_url)
    assert kept.returncode == 0, kept.stderr
    assert "nothing to prune" in kept.stdout

    done = cli("prune", "--older-than", "0s", "--batch-size", "1", "--db", db_url)
    assert done.returncode == 0, done.stderr
    assert f"deleted {trees} execution(s) in 2 tree(s)" in done.stdout
    assert await stored(db_url) == {ready}


async def test_prune_filters_by_the_top_level_status(db_url: str) -> None:
    await make_finished(db_url)
    result = cli("prune", "--older-than", "0s", "--status", "completed", "--db", db_url)
    assert result.returncode == 0, result.stderr
    # Only `many` completed; `mixed` ended children_tasks_failed and stays.
    assert f"deleted {1 + CHILDREN} execution(s) in 1 tree(s) (completed {1 + CHILDREN})" in (
        result.stdout
    )
    assert len(await stored(db_url)) == 3


def test_prune_refuses_bad_durations_and_statuses(db_url: str) -> None:
    for args, message in [
        (["--older-than", "7 days"], "is not a duration"),
        (["--older-than", "-1d"], "is not a duration"),
        (["--older-than", "99999999999999w"], "too long a duration"),
        (["--older-than", "1d", "--status", "running"], "'running' is not one of"),
        (["--older-than", "1d", "--batch-size", "0"], "0 is not in the range"),
    ]:
        result = cli("prune", *args, "--db", db_url)
        assert result.returncode == 2, (args, result.stdout)
        assert message in result.stderr, (args, result.stderr)
