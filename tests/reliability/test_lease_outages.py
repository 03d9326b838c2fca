"""Storage outages longer than a lease: the attempt stops before its lease runs out, and an outage
is not a crash.

Two executors, each with a storage of its own (as two processes would), run one harmless task
that waits until the test lets it finish. Three times, the storage becomes unreachable for
longer than the lease while the task runs: on SQLite another process holds the write lock
(``_sqlite_locker.py``); on PostgreSQL a private server is stopped and started again. Each
time, the executor running the attempt stops it before its lease runs out (so it can never run
at the same time as a re-run), and once the storage answers the execution is made ready again
and re-run — without counting a lease expiry, so three outages with ``max_lease_expiries=2``
do not fail the task for good. (``test_crash_recovery`` checks that real crashes still do.)
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from durable_execution import DurableExecutor, Task, TaskContext
from durable_execution.clock import from_epoch_ms, now
from durable_execution.handle import TaskHandle
from durable_execution.storage import DurableStorage, open_storage
from durable_execution.storage.postgres import PostgresDurableStorage

from ._private_pg_server import PrivatePostgres

HERE = Path(__file__).parent
# The attempt stops a sixth of the lease before it runs out (_leases._STOP_MARGIN_FRACTION): 500 ms
# here. With 1.5 s (a 250 ms margin), an event-loop stall on a loaded 2-core CI machine once let
# the other executor re-run the attempt 36 ms before this one had stopped.
EXPIRE_MS = 3000
LEASE = timedelta(milliseconds=EXPIRE_MS)
OUTAGE_S = 3 * EXPIRE_MS / 1000  # three leases long
OUTAGES = 3
MAX_LEASE_EXPIRIES = 2  # fewer than the outages
WAIT_S = 90.0


@dataclass
class Patient:
    """A harmless task: it records each run, then waits until the test lets it finish."""

    starts: list[tuple[str | None, datetime]] = field(default_factory=list)
    stops: list[datetime] = field(default_factory=list)
    finish: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)

    def register(self, executor: DurableExecutor) -> Task[None, str]:
        async def patient(ctx: TaskContext, _: None) -> str:
            self.starts.append((None if ctx.prev_error is None else ctx.prev_error.message, now()))
            self.started.set()
            try:
                await self.finish.wait()
            except asyncio.CancelledError:
                self.stops.append(now())
                self.stopped.set()
                raise
            return "done"

        return executor.task(id="patient", timeout_ms=3_600_000, run=patient)


Outage = Callable[[], Awaitable[tuple[datetime, datetime | None]]]


async def _run_outages(
    storages: list[DurableStorage], outage: Outage, restore: Callable[[], Awaitable[None]]
) -> tuple[Patient, TaskHandle[str]]:
    """Run the scenario; ``outage`` returns when the storage is unreachable, with that time and
    the lease end it read then (if it can read it); ``restore`` ends the outage."""
    patient = Patient()
    async with AsyncExitStack() as stack:
        tasks = []
        for storage in storages:
            executor = DurableExecutor(
                storage,
                expire_ms=EXPIRE_MS,
                max_lease_expiries=MAX_LEASE_EXPIRIES,
                background_process_intra_batch_sleep_ms=100,
            )
            tasks.append((executor, patient.register(executor)))
            await stack.enter_async_context(executor)
        # Whatever happens, the task may finish first: shutdown waits for running attempts.
        stack.callback(patient.finish.set)
        executor, task = tasks[0]
        handle = await executor.enqueue_task(task, None)
        for round_ in range(OUTAGES):
            await asyncio.wait_for(patient.started.wait(), WAIT_S)
            # A re-run may itself be stopped and re-run once more when its executor's pool is
            # still reconnecting after the restart (renewals time out): safe, so allowed.
            assert len(patient.starts) >= round_ + 1
            patient.started.clear()
            patient.stopped.clear()
            down_at, lease_end = await outage()
            try:
                # Stopped during the outage, before its lease could run out.
                await asyncio.wait_for(patient.stopped.wait(), WAIT_S)
                stopped_at = patient.stops[-1]
                assert stopped_at < down_at + LEASE
                if lease_end is not None:
                    assert stopped_at < lease_end
            finally:
                await restore()
        await asyncio.wait_for(patient.started.wait(), WAIT_S)
        patient.finish.set()
        execution = await handle.wait_and_get_finished_execution(timeout_ms=int(WAIT_S * 1000))
        assert execution.status == "completed", execution
        assert execution.output == "done"
    return patient, handle


async def _check(patient: Patient, storage: DurableStorage, handle: TaskHandle[str]) -> None:
    async with storage.transaction() as tx:
        [row] = await tx.get_task_executions([handle.execution_id])
    assert row.status == "completed"
    # Outages are not crashes: nothing counted, so max_lease_expiries never failed it.
    assert row.lease_expiries == 0
    assert row.retry_attempts == 0
    assert [prev for prev, _ in patient.starts] == [None] + ["Task expired"] * len(patient.stops)
    assert OUTAGES <= len(patient.stops) <= 2 * OUTAGES  # at most one extra stop per outage
    # Never two runs at once: each re-run started after the previous run stopped.
    for stop, (_, start) in zip(patient.stops, patient.starts[1:], strict=True):
        assert start >= stop


async def test_sqlite_write_lock_longer_than_the_lease_stops_and_releases_the_attempt(
    tmp_path: Path,
) -> None:
    path = tmp_path / "durable.db"
    locker: asyncio.subprocess.Process | None = None

    async def outage() -> tuple[datetime, datetime | None]:
        nonlocal locker
        locker = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HERE / "_sqlite_locker.py"),
            str(path),
            str(OUTAGE_S),
            stdout=asyncio.subprocess.PIPE,
        )
        assert locker.stdout is not None
        assert (await locker.stdout.readline()).strip() == b"locked"
        down_at = now()
        # Readers still read under WAL: the lease as last renewed, which no write can move now.
        reader = sqlite3.connect(path)
        try:
            (expires_ms,) = reader.execute(
                "SELECT expires_at FROM durable_task_executions WHERE status = 'running'"
            ).fetchone()
        finally:
            reader.close()
        return down_at, from_epoch_ms(int(expires_ms))

    async def restore() -> None:
        assert locker is not None
        assert await asyncio.wait_for(locker.wait(), 60) == 0

    async with (
        open_storage(f"sqlite:///{path}") as first,
        open_storage(f"sqlite:///{path}") as second,
    ):
        patient, handle = await _run_outages([first, second], outage, restore)
        await _check(patient, first, handle)


async def test_postgres_server_down_longer_than_the_lease_stops_and_releases_the_attempt(
    private_postgres: PrivatePostgres,
) -> None:
    url = private_postgres.url()

    async def outage() -> tuple[datetime, datetime | None]:
        await asyncio.to_thread(private_postgres.stop)
        return now(), None

    async def restore() -> None:
        await asyncio.sleep(OUTAGE_S)
        await asyncio.to_thread(private_postgres.start)

    async with AsyncExitStack() as stack:
        await stack.enter_async_context(open_storage(url))  # migrates
        storages: list[DurableStorage] = [
            await stack.enter_async_context(
                PostgresDurableStorage(url, connect_timeout_s=1.0, display_url="private")
            )
            for _ in range(2)
        ]
        patient, handle = await _run_outages(storages, outage, restore)
        await _check(patient, storages[0], handle)
