"""Guarantee 2: many executor processes share one database without losing or repeating work.

4 worker processes on one PostgreSQL database and 3 on one SQLite file run simple tasks plus
parents with children and a finalize task. Every run records the unique key (``execution_id``,
``attempt``) in a side file; a second run under the same key lands in ``duplicates``. Nothing
crashes here, so: no duplicates, exactly one run per stored execution, every execution finished
and closed, and every finalize saw all of its parent's children.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from durable_execution import DurableExecutor, JsonSerializer, TaskHandle
from durable_execution.storage import DurableStorage, open_storage

from ._crash_tasks import SideStore, register_tasks
from ._worker_processes import all_records, assert_nothing_stuck, side_query, wait_finished, workers

WORKERS = {"sqlite": 3, "postgresql": 4}
# Long leases: no attempt may expire (and be re-run) just because a loaded machine is slow.
EXPIRE_MS = 300_000


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "sqlite":
        return "sqlite", f"sqlite:///{tmp_path / 'durable.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return "postgresql", url


@pytest.fixture
async def storage(backend: tuple[str, str]) -> AsyncIterator[DurableStorage]:
    async with open_storage(backend[1]) as opened:
        yield opened


@pytest.mark.parametrize(
    ("simple", "parents", "children"),
    [
        pytest.param(1000, 5, 20, id="ci"),
        pytest.param(5000, 20, 50, id="full", marks=pytest.mark.slow),
    ],
)
async def test_executor_processes_share_one_database(
    storage: DurableStorage,
    backend: tuple[str, str],
    tmp_path: Path,
    simple: int,
    parents: int,
    children: int,
) -> None:
    name, url = backend
    side = SideStore(tmp_path / "side.db")
    executor = DurableExecutor(storage)  # only enqueues
    tasks = register_tasks(executor, side, None)
    with workers(url, tmp_path) as pool:
        procs = [pool.start(expire_ms=EXPIRE_MS, wait=False) for _ in range(WORKERS[name])]
        for proc in procs:
            pool.wait_ready(proc)

        started = time.monotonic()
        simple_handles: list[TaskHandle[int]] = []
        for first in range(0, simple, 100):  # enqueued while the workers already compete
            simple_handles += await asyncio.gather(
                *(
                    executor.enqueue_task(tasks.simple, i)
                    for i in range(first, min(first + 100, simple))
                )
            )
        tree_handles = [
            await executor.enqueue_task(tasks.tree, {"n": children, "hang": 0, "sleep_ms": 1})
            for _ in range(parents)
        ]
        ids = [h.execution_id for h in simple_handles + tree_handles]
        finished = await wait_finished(storage, ids, timeout_s=900, pool=pool)
        elapsed = time.monotonic() - started
        pool.stop_all()
        records = await all_records(storage)

    serializer = JsonSerializer()
    by_id = {r.execution_id: r for r in finished}
    for i, handle in enumerate(simple_handles):
        record = by_id[handle.execution_id]
        assert record.status == "completed", (record, pool.logs())
        assert record.output == serializer.serialize(2 * i)
    expected_tree = {"expected": children, "seen": children, "sum": 10 * sum(range(children))}
    for tree in tree_handles:
        record = by_id[tree.execution_id]
        assert record.status == "completed", (record, pool.logs())
        assert record.output == serializer.serialize(expected_tree)  # finalize saw every child

    # Stored: every enqueued execution plus each parent's children and finalize execution.
    assert len(records) == simple + parents * (children + 2)
    assert_nothing_stuck(records)
    assert all(r.lease_expiries == 0 and r.retry_attempts == 0 for r in records)
    # Run: each stored execution exactly once (none lost, none twice).
    assert side_query(pool.side, "SELECT * FROM duplicates") == []
    run_ids = [str(row[0]) for row in side_query(pool.side, "SELECT execution_id FROM runs")]
    assert sorted(run_ids) == sorted(r.execution_id for r in records)
    per_worker = side_query(pool.side, "SELECT pid, count(*) FROM runs GROUP BY pid")
    assert len(per_worker) >= 2, per_worker  # the work really was shared
    print(f"{name}: {len(run_ids)} runs in {elapsed:.1f}s, per worker {per_worker}")
