"""Guarantee 3: database outages delay work but lose and duplicate nothing.

PostgreSQL: a private server (never the shared cluster) is stopped mid-workload and started
again a few seconds later. Two executors (each with its own connection pool) log, back off,
reconnect and finish; every task ran exactly once (a side table counts runs); handles that were
waiting across the outage return the finished executions.

SQLite: another process holds the write lock (``BEGIN IMMEDIATE``) for several seconds while
work is enqueued and running: the work is delayed, never failed.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import PoolTimeout

from durable_execution import DurableExecutor, TaskContext
from durable_execution._transactions import is_transient
from durable_execution.handle import TaskHandle
from durable_execution.payloads import FinalizeTaskInput
from durable_execution.storage import DuplicateExecutionIdError, MalformedRowError, open_storage
from durable_execution.storage.errors import SchemaTooNewError, SQLiteBusyError
from durable_execution.storage.postgres import PostgresDurableStorage
from durable_execution.tasks import ChildTask, FinalizeTask, ParentTaskResult, Task

from ._private_pg_server import PrivatePostgres

HERE = Path(__file__).parent
SECRET = "OutageSecret-5a1e"  # trust auth ignores it; it must never show in logs
SIMPLE_TASKS = 120  # the default variant's; the soak variant runs more
PARENTS = 3
CHILDREN = 10
WAVE = 30  # simple tasks enqueued after each restart


class Workload:
    """Simple tasks and parents with children and a finalize; every run is counted."""

    def __init__(self, simple_tasks: int = SIMPLE_TASKS) -> None:
        self.runs: Counter[str] = Counter()  # the side table: (task, input) -> runs
        self.finalize_inputs: dict[int, list[object]] = {}
        self.quarter_done = asyncio.Event()  # set once simple_tasks // 4 runs happened
        self.outage_started = asyncio.Event()  # set by the test once the server is down
        self._quarter = simple_tasks // 4

    def register(self, executor: DurableExecutor) -> tuple[Task[int, int], Task[int, int]]:
        runs = self.runs
        finalize_inputs = self.finalize_inputs

        async def simple(ctx: TaskContext, value: int) -> int:
            runs[f"simple:{value}"] += 1
            if sum(runs.values()) >= self._quarter:
                self.quarter_done.set()
            # Every tenth run lasts until the outage started, so that some finish during it and
            # their result writes must wait it out (however fast the rest of the work goes).
            if value % 10 == 0:
                await self.outage_started.wait()
            await asyncio.sleep((value % 7) * 0.03)
            return value * 2

        async def child(ctx: TaskContext, value: int) -> int:
            runs[f"child:{value}"] += 1
            await asyncio.sleep(0.05)
            return value

        simple_task = executor.task(id="simple", timeout_ms=10_000, run=simple)
        child_task = executor.task(id="child", timeout_ms=10_000, run=child)

        async def parent(ctx: TaskContext, value: int) -> ParentTaskResult[int]:
            runs[f"parent:{value}"] += 1
            return ParentTaskResult(
                output=value,
                children_tasks=[
                    ChildTask(child_task, value * 1000 + index) for index in range(CHILDREN)
                ],
            )

        async def finalize(ctx: TaskContext, value: FinalizeTaskInput[int, int]) -> int:
            runs[f"finalize:{value.output}"] += 1
            outputs = [item.output for item in value.children_tasks_outputs]
            finalize_inputs[value.output] = outputs
            return sum(item for item in outputs if isinstance(item, int))

        parent_task = executor.parent_task(
            id="parent",
            timeout_ms=10_000,
            run_parent=parent,
            finalize_task=FinalizeTask(id="parent_finalize", timeout_ms=10_000, run=finalize),
        )
        return simple_task, parent_task

    def expected_runs(self, simple_values: range, parent_values: range) -> Counter[str]:
        expected: Counter[str] = Counter()
        for value in simple_values:
            expected[f"simple:{value}"] = 1
        for value in parent_values:
            expected[f"parent:{value}"] = 1
            expected[f"finalize:{value}"] = 1
            for index in range(CHILDREN):
                expected[f"child:{value * 1000 + index}"] = 1
        return expected


async def _enqueue(
    executor: DurableExecutor,
    simple_task: Task[int, int],
    parent_task: Task[int, int],
    simple_values: range,
    parent_values: range,
) -> list[tuple[TaskHandle[int], int]]:
    handles = [(await executor.enqueue_task(simple_task, v), v * 2) for v in simple_values]
    for value in parent_values:
        expected = sum(value * 1000 + index for index in range(CHILDREN))
        handles.append((await executor.enqueue_task(parent_task, value), expected))
    return handles


async def _check_finished(handles: list[tuple[TaskHandle[int], int]]) -> None:
    async def one(handle: TaskHandle[int]) -> object:
        execution = await handle.wait_and_get_finished_execution(
            polling_interval_ms=100, timeout_ms=90_000
        )
        assert execution.status == "completed", execution
        return execution.output

    outputs = await asyncio.gather(*(one(handle) for handle, _ in handles))
    assert list(outputs) == [expected for _, expected in handles]


@pytest.mark.parametrize(
    ("outages_s", "simple_tasks"),
    [
        # Longer than a transaction's three attempts on the fast-failing pool (about 3.2 s), so
        # that the waiting handles' shared polls must fail and be retried, not merely wait.
        pytest.param((5.0,), SIMPLE_TASKS, id="one-restart"),
        # Longer than the pools' 30 s connection wait, and restarts in quick succession.
        pytest.param((3.0, 35.0, 1.0), 600, id="soak-three-restarts", marks=pytest.mark.slow),
    ],
)
async def test_postgres_restart_mid_workload_loses_and_duplicates_nothing(
    private_postgres: PrivatePostgres,
    caplog: pytest.LogCaptureFixture,
    outages_s: tuple[float, ...],
    simple_tasks: int,
) -> None:
    caplog.set_level(logging.INFO, logger="durable_execution")
    url = private_postgres.url(password=SECRET)
    workload = Workload(simple_tasks)
    # Leases outlast every outage, so a finished run's result write can always wait it out: a
    # re-run (at-least-once after a lost result) would show as a duplicate in the side table.
    expire_ms = max(5_000, int(max(outages_s) * 2_000))
    # The second storage is opened (and migrates) as users do; the first waits at most 1 s for a
    # pooled connection, so that during the outage its transactions fail fast instead of queueing
    # in the pool: its result writes and waiting handles must ride that out.
    fast_failing = PostgresDurableStorage(url, connect_timeout_s=1.0, display_url="private")
    async with open_storage(url) as second, fast_failing as first:
        executors = [
            DurableExecutor(
                storage, background_process_intra_batch_sleep_ms=100, expire_ms=expire_ms
            )
            for storage in (first, second)
        ]
        registered = [workload.register(executor) for executor in executors]
        simple_task, parent_task = registered[0]
        before = await _enqueue(
            executors[0], simple_task, parent_task, range(simple_tasks), range(PARENTS)
        )
        # The first executor alone claims the first hundred tasks (one batch, FIFO), so the
        # long runs, whose results are due during the outage, run on its fast-failing pool.
        async with executors[0]:
            # Handles wait across the outage: started now, checked at the end.
            waiting = asyncio.create_task(_check_finished(before))
            await workload.quarter_done.wait()
            runs_before_outage = sum(workload.runs.values())
            async with executors[1]:
                after: list[tuple[TaskHandle[int], int]] = []
                for wave, outage_s in enumerate(outages_s):
                    await asyncio.to_thread(private_postgres.stop)
                    workload.outage_started.set()
                    await asyncio.sleep(outage_s)
                    await asyncio.to_thread(private_postgres.start)
                    # New work after each restart goes through the recovered pools too.
                    first_value = simple_tasks + wave * WAVE
                    after += await _enqueue(
                        executors[1],
                        registered[1][0],
                        registered[1][1],
                        range(first_value, first_value + WAVE),
                        range(PARENTS + wave, PARENTS + wave + 1),
                    )
                await _check_finished(after)
                await waiting
        waves = len(outages_s)
        expected = workload.expected_runs(
            range(simple_tasks + waves * WAVE), range(PARENTS + waves)
        )
        assert workload.runs == expected  # nothing lost, nothing run twice
        for value, outputs in workload.finalize_inputs.items():
            assert outputs == [value * 1000 + index for index in range(CHILDREN)]
        assert runs_before_outage < sum(expected.values())  # the outage really was mid-workload

    outage_logs = [
        record
        for record in caplog.records
        if record.levelno >= logging.WARNING and record.name.startswith("durable_execution")
    ]
    messages = [record.getMessage() for record in outage_logs]
    assert any("Could not store the result of execution" in m for m in messages), messages
    assert any("cannot read it yet" in m for m in messages), messages
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    "lock_hold_s",
    [
        pytest.param(4.0, id="within-busy-timeout"),
        # Longer than the 30 s busy timeout: SQLiteBusyError surfaces inside the executor (and
        # is logged), transactions are retried, and still nothing fails.
        pytest.param(40.0, id="soak-beyond-busy-timeout", marks=pytest.mark.slow),
    ],
)
async def test_sqlite_write_lock_held_by_another_process_delays_but_does_not_fail(
    sqlite_path: Path, caplog: pytest.LogCaptureFixture, lock_hold_s: float
) -> None:
    caplog.set_level(logging.WARNING, logger="durable_execution")
    workload = Workload()
    async with open_storage(f"sqlite:///{sqlite_path}") as storage:
        executor = DurableExecutor(storage, background_process_intra_batch_sleep_ms=100)
        simple_task, parent_task = workload.register(executor)
        async with executor:
            first = await _enqueue(executor, simple_task, parent_task, range(40), range(1))
            locker = await asyncio.create_subprocess_exec(
                sys.executable,
                str(HERE / "_sqlite_locker.py"),
                str(sqlite_path),
                str(lock_hold_s),
                stdout=asyncio.subprocess.PIPE,
            )
            try:
                assert locker.stdout is not None
                assert (await locker.stdout.readline()).strip() == b"locked"
                workload.outage_started.set()
                locked_at = time.monotonic()
                # Enqueued while the other process holds the lock: these wait for it.
                second = await _enqueue(
                    executor, simple_task, parent_task, range(40, 80), range(1, 2)
                )
                enqueued_after_s = time.monotonic() - locked_at
                await _check_finished(first + second)
            finally:
                assert await asyncio.wait_for(locker.wait(), 30) == 0
    assert enqueued_after_s >= lock_hold_s * 0.75  # the lock really was in the way
    assert workload.runs == workload.expected_runs(range(80), range(2))
    failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    if lock_hold_s < 30:
        assert failures == []


def test_outage_errors_are_transient_and_facts_about_the_data_are_not() -> None:
    # Transient: retried by transactions, result writes and waiting handles.
    assert is_transient(psycopg.OperationalError("server closed the connection unexpectedly"))
    assert is_transient(PoolTimeout("couldn't get a connection after 1.00 sec"))
    assert is_transient(SQLiteBusyError("database is locked"))
    # Permanent: retrying cannot help, and would stall a background loop on a poison row.
    assert not is_transient(MalformedRowError("te_x", "error", "invalid JSON"))
    assert not is_transient(SchemaTooNewError(99, 2))
    assert not is_transient(DuplicateExecutionIdError(["te_x"]))
