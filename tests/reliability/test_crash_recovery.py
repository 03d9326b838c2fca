"""Guarantee 1: crash recovery. Real worker subprocesses are SIGKILLed mid-run, mid-write and at
random points; another worker with a short ``expire_ms`` re-runs what they held once the lease
passed. Each execution completes exactly once and nothing is left stuck. Lease expiries are
bounded by ``max_lease_expiries``.

The runs are counted in a side SQLite file (``_crash_tasks.SideStore``): a run records itself before
anything else, so a run that a kill interrupted is counted too.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from durable_execution import DurableExecutor, JsonSerializer, TaskContext
from durable_execution.clock import now
from durable_execution.model import NO_RETRIES
from durable_execution.storage import (
    DurableStorage,
    InMemoryStorage,
    TaskExecutionRecord,
    open_storage,
)

from ._crash_tasks import ATasks, SideStore, register_tasks
from ._worker_processes import (
    Workers,
    all_records,
    assert_nothing_stuck,
    read,
    runs_of,
    side_query,
    wait_finished,
    wait_for_run,
    workers,
)

EXPIRED = "Task expired"
# Lease of the crash workers: expire_ms 2000, so a re-run follows a kill within ~2 s.
WAIT_S = 60.0


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'durable.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def storage(backend_url: str) -> AsyncIterator[DurableStorage]:
    # Opened (and migrated) by the test before any worker starts.
    async with open_storage(backend_url) as opened:
        yield opened


@pytest.fixture
def side(tmp_path: Path) -> SideStore:
    return SideStore(tmp_path / "side.db")  # creates the side tables before any worker runs


def enqueuer(storage: DurableStorage, side: SideStore) -> tuple[DurableExecutor, ATasks]:
    executor = DurableExecutor(storage)  # never started: it only enqueues
    return executor, register_tasks(executor, side, None)


def assert_runs_explained(side_path: Path, records: list[TaskExecutionRecord]) -> int:
    """Every run is a first run or a re-run after an expiry; returns the number of runs.

    At most one run per execution saw no previous error (a kill between the claim and the run's
    first statement leaves none); every other run saw "Task expired"; and there are never more
    runs than the row's durable expiry count allows.
    """
    total = 0
    for record in records:
        runs = runs_of(side_path, record.execution_id)
        total += len(runs)
        firsts = [prev for _, prev in runs if prev is None]
        reruns = [prev for _, prev in runs if prev is not None]
        assert len(firsts) <= 1, (record.execution_id, runs)
        assert set(reruns) <= {EXPIRED}, (record.execution_id, runs)
        assert len(runs) <= record.lease_expiries + 1, (record.execution_id, runs, record)
    return total


async def test_sigkill_mid_run_is_re_run_after_the_lease_and_completes_once(
    storage: DurableStorage, side: SideStore, backend_url: str, tmp_path: Path
) -> None:
    executor, tasks = enqueuer(storage, side)
    with workers(backend_url, tmp_path) as pool:
        first = pool.start()
        handle = await executor.enqueue_task(tasks.hang_once, "k1")
        wait_for_run(pool.side, handle.execution_id)
        pool.kill(first)
        [orphan] = await read(storage, [handle.execution_id])
        assert orphan.status == "running"  # what the crash left: a running row with a lease

        second = pool.start()
        [record] = await wait_finished(storage, [handle.execution_id], timeout_s=WAIT_S, pool=pool)
        pool.stop_all()

    assert record.status == "completed", pool.logs()
    assert record.output == JsonSerializer().serialize("recovered k1")
    assert record.retry_attempts == 0  # an expiry is not a retry
    assert record.lease_expiries == 1
    assert runs_of(pool.side, handle.execution_id) == [(first.pid, None), (second.pid, EXPIRED)]
    # The re-run keeps attempt 0: it is the one duplicate of the (execution_id, attempt) key.
    assert side_query(pool.side, "SELECT execution_id, attempt FROM duplicates") == [
        (handle.execution_id, 0)
    ]
    assert (pool.kills, pool.started) == (1, 2)


async def test_parent_of_a_killed_child_still_finishes(
    storage: DurableStorage, side: SideStore, backend_url: str, tmp_path: Path
) -> None:
    executor, tasks = enqueuer(storage, side)
    with workers(backend_url, tmp_path) as pool:
        first = pool.start()
        handle = await executor.enqueue_task(tasks.tree, {"n": 3, "hang": 1, "sleep_ms": 0})
        # Child 0 hangs; wait until all three children ran, then kill their worker.
        deadline = time.monotonic() + WAIT_S
        while len(side_query(pool.side, "SELECT 1 FROM runs WHERE task_id = 'a_leaf'")) < 3:
            assert time.monotonic() < deadline, pool.logs()
            await asyncio.sleep(0.01)
        pool.kill(first)
        pool.start()
        [parent] = await wait_finished(storage, [handle.execution_id], timeout_s=WAIT_S, pool=pool)
        pool.stop_all()
        records = await all_records(storage)

    assert parent.status == "completed", pool.logs()
    assert parent.output == JsonSerializer().serialize({"expected": 3, "seen": 3, "sum": 30})
    assert_nothing_stuck(records)
    assert_runs_explained(pool.side, records)
    # The hanging child (input i=0) ran, was killed, and was re-run after its lease expired.
    [child0] = [r for r in records if r.task_id == "a_leaf" and '"i":0' in r.run_input]
    assert [prev for _, prev in runs_of(pool.side, child0.execution_id)] == [None, EXPIRED]
    assert child0.lease_expiries == 1


async def _block_parent_write(backend_url: str, parent_id: str) -> object:
    """Take a lock that the worker's write of the parent's result (and children) must wait for.

    PostgreSQL: the parent's row, so the guarded UPDATE waits inside its transaction. SQLite:
    the database's write lock, so the write transaction waits for it (busy_timeout).
    """
    if backend_url.startswith("sqlite:"):
        conn = sqlite3.connect(backend_url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        return conn
    pg = await psycopg.AsyncConnection.connect(backend_url)
    await pg.execute(
        "SELECT 1 FROM durable_task_executions WHERE execution_id = %s FOR UPDATE", [parent_id]
    )
    return pg


async def _wait_pg_lock_waiter(backend_url: str) -> None:
    """Until some other session waits on a lock: the worker's write is blocked mid-transaction."""
    async with await psycopg.AsyncConnection.connect(backend_url, autocommit=True) as conn:
        for _ in range(500):
            cursor = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()"
            )
            row = await cursor.fetchone()
            if row is not None and row[0] > 0:
                return
            await asyncio.sleep(0.01)
    raise AssertionError("the worker's write never waited for the row lock")


async def test_kill_during_the_parents_child_insertion_inserts_children_once(
    storage: DurableStorage, side: SideStore, backend_url: str, tmp_path: Path
) -> None:
    executor, tasks = enqueuer(storage, side)
    with workers(backend_url, tmp_path) as pool:
        first = pool.start()
        spec = {"n": 4, "hang": 0, "sleep_ms": 0, "parent_sleep_ms": 700}
        handle = await executor.enqueue_task(tasks.tree, spec)
        wait_for_run(pool.side, handle.execution_id)
        lock = await _block_parent_write(backend_url, handle.execution_id)
        try:
            deadline = time.monotonic() + WAIT_S
            while not side_query(pool.side, "SELECT 1 FROM events WHERE kind='parent_returning'"):
                assert time.monotonic() < deadline, pool.logs()
                await asyncio.sleep(0.01)
            if isinstance(lock, psycopg.AsyncConnection):
                await _wait_pg_lock_waiter(backend_url)
            else:
                await asyncio.sleep(0.3)  # the write transaction is now waiting for the lock
            pool.kill(first)
        finally:
            if isinstance(lock, psycopg.AsyncConnection):
                await lock.rollback()
                await lock.close()
            else:
                assert isinstance(lock, sqlite3.Connection)
                lock.rollback()
                lock.close()
        [before] = await read(storage, [handle.execution_id])
        assert before.status == "running"
        assert before.children_tasks is None

        pool.start()
        [parent] = await wait_finished(storage, [handle.execution_id], timeout_s=WAIT_S, pool=pool)
        pool.stop_all()
        records = await all_records(storage)

    assert parent.status == "completed", pool.logs()
    assert parent.output == JsonSerializer().serialize({"expected": 4, "seen": 4, "sum": 60})
    children = [
        r for r in records if r.parent_task and r.parent_task.execution_id == parent.execution_id
    ]
    assert len(children) == 5  # 4 children and the finalize execution, each inserted once
    assert_nothing_stuck(records)
    assert_runs_explained(pool.side, records)
    assert [prev for _, prev in runs_of(pool.side, parent.execution_id)] == [None, EXPIRED]


async def _random_kills(pool: Workers, kills: int, rng: random.Random) -> None:
    for _ in range(kills):
        proc = pool.start()
        await asyncio.sleep(rng.uniform(0.05, 0.6))
        pool.kill(proc)


@pytest.mark.parametrize(
    ("trees", "kills"),
    [pytest.param(12, 4, id="ci"), pytest.param(60, 20, id="soak", marks=pytest.mark.slow)],
)
async def test_random_kills_in_many_small_trees_leave_nothing_stuck(
    storage: DurableStorage,
    side: SideStore,
    backend_url: str,
    tmp_path: Path,
    trees: int,
    kills: int,
) -> None:
    """Kills land anywhere: mid-run, while children are inserted, while finished children are
    closed and their completion propagated to the parent, while finalize executions start."""
    rng = random.Random(trees * 1000 + kills)
    executor, tasks = enqueuer(storage, side)
    handles = [
        await executor.enqueue_task(
            tasks.tree, {"n": rng.randint(1, 4), "hang": 0, "sleep_ms": rng.randint(0, 30)}
        )
        for _ in range(trees)
    ]
    with workers(backend_url, tmp_path) as pool:
        await _random_kills(pool, kills, rng)
        pool.start()
        ids = [h.execution_id for h in handles]
        parents = await wait_finished(storage, ids, timeout_s=WAIT_S * 3, pool=pool)
        pool.stop_all()
        records = await all_records(storage)

    serializer = JsonSerializer()
    for parent in parents:
        n = len(parent.children_tasks or ())
        expected = {"expected": n, "seen": n, "sum": sum(10 * i for i in range(n))}
        assert parent.status == "completed", (parent, pool.logs())
        assert parent.output == serializer.serialize(expected)
    assert_nothing_stuck(records)
    runs = assert_runs_explained(pool.side, records)
    assert runs >= len(records)
    assert pool.kills == kills
    print(
        f"random kills: {len(records)} executions, {runs} runs, {pool.kills} kills,"
        f" {pool.started} worker starts, {sum(r.lease_expiries for r in records)} expiries"
    )


async def test_executions_that_crash_their_process_fail_at_max_lease_expiries(
    storage: DurableStorage, side: SideStore, backend_url: str, tmp_path: Path
) -> None:
    executor, tasks = enqueuer(storage, side)
    with workers(backend_url, tmp_path) as pool:
        handle = await executor.enqueue_task(tasks.crash_always, "boom")
        deadline = time.monotonic() + WAIT_S
        while True:
            [record] = await read(storage, [handle.execution_id])
            if record.status == "failed" and record.is_closed:
                break
            assert time.monotonic() < deadline, pool.logs()
            if all(proc.poll() is not None for proc in pool.procs):
                if pool.procs:
                    pool.kills += 1  # the task killed its own worker
                pool.start(max_lease_expiries=2)
            await asyncio.sleep(0.05)
        pool.stop_all()

    assert record.error is not None
    assert record.error.message.startswith("Task lease expired 2 times")
    assert not record.error.is_retryable
    assert record.lease_expiries == 2
    # Run, crash, expiry 1 and re-run, crash, expiry 2 = the bound: failed without a third run.
    assert [prev for _, prev in runs_of(pool.side, handle.execution_id)] == [None, EXPIRED]
    assert pool.kills == 2


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def any_storage(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[DurableStorage]:
    if request.param == "memory":
        yield InMemoryStorage()
        return
    url = (
        f"sqlite:///{tmp_path / 'bound.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    async with open_storage(url) as opened:
        yield opened


def _orphan(execution_id: str, lease_expiries: int) -> TaskExecutionRecord:
    """A running row whose executor died long ago, its lease already expired."""
    claimed_at = now() - timedelta(seconds=10)
    return TaskExecutionRecord(
        task_id="bounded",
        execution_id=execution_id,
        retry_options=NO_RETRIES,
        sleep_ms_before_run=0,
        timeout_ms=1000,
        run_input=JsonSerializer().serialize(None),
        status="running",
        start_at=claimed_at,
        created_at=claimed_at,
        updated_at=claimed_at,
        started_at=claimed_at,
        expires_at=claimed_at + timedelta(seconds=2),
        lease_expiries=lease_expiries,
    )


async def test_the_expiry_count_is_durable_and_the_bound_is_configurable(
    any_storage: DurableStorage,
) -> None:
    """In-process, every backend: the count survives in the row; under the bound the row is
    re-run (count + 1), at the bound it fails; ``None`` never fails it."""
    async with any_storage.transaction() as tx:
        await tx.insert_task_executions(
            [
                _orphan("te_UnderTheBound00000000000", 1),
                _orphan("te_AtTheBound0000000000000", 2),
            ]
        )
    ran: list[str] = []
    executor = DurableExecutor(
        any_storage, max_lease_expiries=3, background_process_intra_batch_sleep_ms=20
    )

    def run(ctx: TaskContext, _: None) -> str:
        ran.append(ctx.execution_id)
        return "ok"

    executor.task(id="bounded", timeout_ms=1000, run=run)
    async with executor:
        deadline = time.monotonic() + 30
        while True:
            under, at = await read(
                any_storage, ["te_UnderTheBound00000000000", "te_AtTheBound0000000000000"]
            )
            if under.status == "completed" and at.status == "failed" and at.is_closed:
                break
            assert time.monotonic() < deadline, (under, at)
            await asyncio.sleep(0.02)
    assert (under.lease_expiries, at.lease_expiries) == (2, 3)
    assert ran == ["te_UnderTheBound00000000000"]
    assert at.error is not None
    assert at.error.message.startswith("Task lease expired 3 times")
    with pytest.raises(ValueError, match="max_lease_expiries"):
        DurableExecutor(any_storage, max_lease_expiries=0)
