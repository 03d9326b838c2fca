"""Concurrent transactions on the SQL backends.

PostgreSQL runs transactions in parallel, so claims must skip locked rows to stay disjoint;
SQLite serialises writers (per process with a lock, across processes with BEGIN IMMEDIATE), so
several processes hammering one file must lose no update and never see "database is locked".
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from tests._stored import all_ids as stored_ids

import durable_execution
from durable_execution.storage import (
    DurableStorage,
    TaskExecutionUpdate,
    WhereByExecutionIds,
    open_storage,
)

from ._records import at, ids, insert, read, record, update_one

HAMMER = Path(__file__).with_name("_hammer.py")
LEASE_MS = 60_000


async def claim(storage: DurableStorage, limit: int) -> list[str]:
    """The executor's claim: up to ``limit`` ready rows, locked and marked running."""
    async with storage.transaction() as tx:
        claimed = await tx.claim_ready_task_executions(now=at(100), limit=limit, lease_ms=LEASE_MS)
    assert claimed.malformed == []
    return [r.execution_id for r in claimed.records]


async def test_postgres_skip_locked_claims_are_disjoint_and_do_not_wait(postgres_url: str) -> None:
    async with open_storage(postgres_url, pool_max_size=4) as storage:
        await insert(storage, *(record(f"te_{n}", offset_ms=n) for n in range(10)))
        first_locked = asyncio.Event()
        release_first = asyncio.Event()

        async def first() -> list[str]:
            async with storage.transaction() as tx:
                got = await tx.claim_ready_task_executions(now=at(100), limit=4, lease_ms=LEASE_MS)
                first_locked.set()
                await release_first.wait()  # keep the row locks while the second claims
                return [r.execution_id for r in got.records]

        holder = asyncio.create_task(first())
        await first_locked.wait()
        # The second transaction runs while the first is open and skips its rows, in FIFO order.
        second = await asyncio.wait_for(claim(storage, 4), timeout=5)
        # A plain read by id does not wait for the held rows (and sees them still ready).
        unlocked = await asyncio.wait_for(ids(storage, [f"te_{n}" for n in range(4)]), timeout=5)
        unclaimed = await stored_ids(storage, ["ready"])
        release_first.set()
        held = await holder
    assert held == ["te_0", "te_1", "te_2", "te_3"]
    assert second == ["te_4", "te_5", "te_6", "te_7"]
    assert unlocked == ["te_0", "te_1", "te_2", "te_3"]
    assert unclaimed == ["te_0", "te_1", "te_2", "te_3", "te_8", "te_9"]


async def test_postgres_concurrent_claimers_take_every_row_exactly_once(
    postgres_url: str,
) -> None:
    rows = 60
    async with open_storage(postgres_url, pool_max_size=8) as storage:
        await insert(storage, *(record(f"te_{n:02}", offset_ms=n) for n in range(rows)))

        async def claimer() -> list[str]:
            mine: list[str] = []
            while batch := await claim(storage, 3):
                mine += batch
            return mine

        results = await asyncio.gather(*(claimer() for _ in range(8)))
        claimed = [execution_id for result in results for execution_id in result]
        assert sorted(claimed) == [f"te_{n:02}" for n in range(rows)]  # none twice, none lost
        assert sum(1 for result in results if result) > 1  # the work really was shared
        assert await stored_ids(storage, ["ready"]) == []


async def test_postgres_transactions_run_in_parallel(postgres_url: str) -> None:
    async with open_storage(postgres_url, pool_min_size=2, pool_max_size=2) as storage:
        both_open = asyncio.Barrier(2)

        async def meet() -> None:
            async with storage.transaction():
                await both_open.wait()  # only possible if two transactions are open at once

        await asyncio.wait_for(asyncio.gather(meet(), meet()), timeout=10)


async def test_sqlite_transactions_of_one_process_queue(sqlite_path: Path) -> None:
    async with open_storage(f"sqlite:///{sqlite_path}") as storage:
        await insert(storage, record("te_counter"))

        async def increment() -> None:
            async with storage.transaction() as tx:
                (row,) = await tx.get_task_executions(["te_counter"])
                await asyncio.sleep(0)
                await update_one(
                    tx,
                    WhereByExecutionIds(["te_counter"]),
                    TaskExecutionUpdate(
                        updated_at=at(1),
                        children_tasks_completed_count=row.children_tasks_completed_count + 1,
                    ),
                )

        await asyncio.gather(*(increment() for _ in range(100)))
        back = await read(storage, "te_counter")
    assert back is not None
    assert back.children_tasks_completed_count == 100


@pytest.mark.parametrize(("processes", "increments"), [(2, 300), (4, 100)])
async def test_sqlite_processes_hammering_one_file_lose_nothing(
    sqlite_path: Path, processes: int, increments: int
) -> None:
    async with open_storage(f"sqlite:///{sqlite_path}") as storage:
        await insert(storage, record("te_counter"))
    source_root = str(Path(durable_execution.__file__).parents[1])
    python_path = os.pathsep.join([source_root, os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": python_path}
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(HAMMER),
            str(sqlite_path),
            str(increments),
            "4",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(processes)
    ]
    outputs = [await child.communicate() for child in children]
    for child, (_, stderr) in zip(children, outputs, strict=True):
        text = stderr.decode()
        assert "locked" not in text, text
        assert child.returncode == 0, text
    async with open_storage(f"sqlite:///{sqlite_path}") as storage:
        back = await read(storage, "te_counter")
    assert back is not None
    assert back.children_tasks_completed_count == processes * increments
