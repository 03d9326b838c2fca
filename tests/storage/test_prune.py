"""Retention (``prune_executions``) on memory, SQLite and PostgreSQL: whole finished trees only.

Every tree here is built from stored records directly, so each rule is tested on its own: the
age bound, the statuses filter, closed-ness, active descendants at any depth, batching (the
cursor must walk past trees it may not delete), dry runs, and bad arguments.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from durable_execution import PruneResult, prune_executions
from durable_execution.model import ParentTaskRef, TaskExecutionStatus, TaskRef
from durable_execution.storage import DurableStorage, TaskExecutionRecord

from ._records import T0, all_ids, at, insert, record

NOW = T0 + timedelta(days=30)


def finished(
    execution_id: str,
    *,
    days_ago: float,
    status: TaskExecutionStatus = "completed",
    closed: bool = True,
    root: str | None = None,
    parent: str | None = None,
) -> TaskExecutionRecord:
    """A finished execution (``days_ago`` before NOW), under ``parent`` in ``root``'s tree."""
    moment = NOW - timedelta(days=days_ago)
    offset_ms = int((moment - T0).total_seconds() * 1000)
    return record(
        execution_id,
        status=status,
        offset_ms=offset_ms,
        finished_at=at(offset_ms),
        is_closed=closed,
        root_task=None if root is None else TaskRef(task_id="task", execution_id=root),
        parent_task=None if parent is None else ParentTaskRef(task_id="task", execution_id=parent),
    )


def active(execution_id: str, *, root: str, parent: str) -> TaskExecutionRecord:
    return record(
        execution_id,
        status="running",
        root_task=TaskRef(task_id="task", execution_id=root),
        parent_task=ParentTaskRef(task_id="task", execution_id=parent),
    )


async def prune(storage: DurableStorage, **options: object) -> PruneResult:
    options.setdefault("older_than", timedelta(days=7))
    return await prune_executions(storage, now=NOW, **options)  # type: ignore[arg-type]


async def test_every_backend_can_prune(storage: DurableStorage) -> None:
    async with storage.transaction() as tx:
        assert callable(tx.prune_batch)


async def test_old_trees_go_whole_and_recent_ones_stay(storage: DurableStorage) -> None:
    await insert(
        storage,
        finished("te_old", days_ago=10),
        finished("te_old_child", days_ago=10, root="te_old", parent="te_old"),
        finished("te_old_grandchild", days_ago=10, root="te_old", parent="te_old_child"),
        finished("te_old_fin", days_ago=10, status="failed", root="te_old", parent="te_old"),
        finished("te_new", days_ago=1),
        finished("te_new_child", days_ago=12, root="te_new", parent="te_new"),
    )
    result = await prune(storage)
    assert result == PruneResult(trees=1, executions_by_status={"completed": 3, "failed": 1})
    assert result.executions == 4
    # A recent tree stays whole, even its child that finished long ago.
    assert await all_ids(storage) == ["te_new", "te_new_child"]


async def test_a_tree_with_an_active_or_unclosed_execution_stays(storage: DurableStorage) -> None:
    await insert(
        storage,
        # A cancelled parent whose child (two levels down) still runs.
        finished("te_a", days_ago=10, status="cancelled"),
        finished("te_a_child", days_ago=10, root="te_a", parent="te_a"),
        active("te_a_grandchild", root="te_a", parent="te_a_child"),
        # A finished tree whose child is not closed yet (its parent was not told).
        finished("te_b", days_ago=10, status="children_tasks_failed"),
        finished(
            "te_b_child", days_ago=10, status="failed", closed=False, root="te_b", parent="te_b"
        ),
        # A finished top-level execution that is not closed yet.
        finished("te_c", days_ago=10, closed=False),
        # Active top-level executions are never candidates.
        record("te_d", status="ready"),
        record("te_e", status="running"),
    )
    before = await all_ids(storage)
    assert await prune(storage, older_than=timedelta(0)) == PruneResult(trees=0)
    assert await all_ids(storage) == before


async def test_a_child_is_never_pruned_on_its_own(storage: DurableStorage) -> None:
    await insert(
        storage,
        record("te_parent", status="waiting_for_children_tasks"),
        finished("te_child", days_ago=20, root="te_parent", parent="te_parent"),
    )
    assert (await prune(storage)).trees == 0
    assert await all_ids(storage) == ["te_child", "te_parent"]


async def test_the_statuses_filter_looks_at_the_top_level_execution(
    storage: DurableStorage,
) -> None:
    await insert(
        storage,
        finished("te_ok", days_ago=10),
        finished("te_failed", days_ago=10, status="failed"),
        finished("te_failed_child", days_ago=10, root="te_failed", parent="te_failed"),
        finished("te_cancelled", days_ago=10, status="cancelled"),
    )
    result = await prune(storage, statuses=["failed", "cancelled"])
    assert result == PruneResult(
        trees=2, executions_by_status={"failed": 1, "completed": 1, "cancelled": 1}
    )
    assert await all_ids(storage) == ["te_ok"]


async def test_the_age_bound_is_exclusive_to_the_millisecond(storage: DurableStorage) -> None:
    await insert(storage, finished("te_edge", days_ago=7), finished("te_older", days_ago=7.0001))
    assert (await prune(storage)).trees == 1
    assert await all_ids(storage) == ["te_edge"]


async def test_batches_walk_past_trees_they_may_not_delete(storage: DurableStorage) -> None:
    """Blocked trees sort between prunable ones: a batch that stopped at them would end early."""
    records = []
    for n in range(7):
        records.append(finished(f"te_{n}", days_ago=20 - n))
        if n % 2 == 0:  # every other tree is blocked by a running child
            records.append(active(f"te_{n}_child", root=f"te_{n}", parent=f"te_{n}"))
    await insert(storage, *records)
    result = await prune(storage, batch_size=2)
    assert result == PruneResult(trees=3, executions_by_status={"completed": 3})
    assert await all_ids(storage) == [
        f"te_{n}{suffix}" for n in (0, 2, 4, 6) for suffix in ("", "_child")
    ]


async def test_a_dry_run_counts_every_batch_and_deletes_nothing(storage: DurableStorage) -> None:
    await insert(
        storage,
        *[finished(f"te_{n}", days_ago=10 + n) for n in range(5)],
        finished("te_0_child", days_ago=10, status="timed_out", root="te_0", parent="te_0"),
    )
    before = await all_ids(storage)
    result = await prune(storage, dry_run=True, batch_size=2)
    assert result == PruneResult(
        trees=5, executions_by_status={"completed": 5, "timed_out": 1}, dry_run=True
    )
    assert await all_ids(storage) == before
    assert await prune(storage, batch_size=2) == PruneResult(
        trees=5, executions_by_status={"completed": 5, "timed_out": 1}
    )
    assert await all_ids(storage) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"older_than": timedelta(days=-1)}, "older_than must be a timedelta >= 0"),
        ({"older_than": 7}, "older_than must be a timedelta"),
        ({"statuses": ["running"]}, "not finished: running"),
        ({"statuses": []}, "at least one finished status"),
        ({"statuses": "failed"}, "not one string"),
        ({"batch_size": 0}, "batch_size must be in 1..5000"),
        ({"batch_size": 5001}, "batch_size must be in 1..5000"),
        ({"older_than": timedelta.max}, "older_than is too large"),
    ],
)
async def test_bad_arguments_are_refused_and_nothing_is_deleted(
    storage: DurableStorage, options: dict[str, object], message: str
) -> None:
    await insert(storage, finished("te_old", days_ago=10))
    with pytest.raises(ValueError, match=message):
        await prune(storage, **options)
    assert await all_ids(storage) == ["te_old"]


async def test_trees_that_finished_at_the_same_moment_are_all_walked(
    storage: DurableStorage,
) -> None:
    await insert(storage, *[finished(f"te_{n}", days_ago=10) for n in range(5)])
    assert await prune(storage, dry_run=True, batch_size=1) == PruneResult(
        trees=5, executions_by_status={"completed": 5}, dry_run=True
    )
