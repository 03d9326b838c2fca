"""PostgreSQL: connections the server dropped are replaced without the caller noticing.

A private server (never the shared cluster) has its sessions terminated (``pg_terminate_backend``,
as a failover or an idle reaper does) or is stopped for a few seconds and started again. The next
``enqueue_task`` must succeed — not fail on the dead pooled connection it happened to borrow —
and after a restart enqueues and a worker's completions must resume within seconds of the server
coming back, not after the pool's reconnect backoff has run its course.

Timings are reported (``-s`` shows them), and asserted only with generous bounds.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

import psycopg
import pytest

from durable_execution import DurableExecutor, TaskContext
from durable_execution.storage import open_storage
from durable_execution.storage.postgres import PostgresDurableStorage
from durable_execution.tasks import Task

from ._private_pg_server import PrivatePostgres

SECRET = "ReconnectSecret-2c7d"  # trust auth ignores it; it must never show in logs
APP = "de_reconnect_test"  # names the storage's sessions, so that only they are terminated
RECOVERY_BOUND_S = 10.0  # liveness bound, far above the ~1 s the reconnect aims for


def _url(server: PrivatePostgres) -> str:
    return f"{server.url(password=SECRET)}?application_name={APP}"


async def _terminate_storage_sessions(server: PrivatePostgres) -> int:
    async with await psycopg.AsyncConnection.connect(server.url(), autocommit=True) as admin:
        cursor = await admin.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))"
            " FROM pg_stat_activity WHERE application_name = %s",
            [APP],
        )
        row = await cursor.fetchone()
    assert row is not None
    terminated: int = row[0]
    return terminated


def _noop(ctx: TaskContext, value: int) -> int:
    return value


async def test_the_next_enqueue_after_the_server_terminated_every_session_succeeds(
    private_postgres: PrivatePostgres, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    outcomes: list[str] = []
    async with open_storage(_url(private_postgres)) as storage:
        executor = DurableExecutor(storage)
        task = executor.task(id="noop", timeout_ms=10_000, run=_noop)
        await executor.enqueue_task(task, -1)  # every pooled connection has been used
        for round_ in range(10):
            terminated = await _terminate_storage_sessions(private_postgres)
            assert terminated >= 1
            await asyncio.sleep(0.2)  # the sessions are gone before the next checkout
            try:
                handle = await executor.enqueue_task(task, round_)
            except Exception as error:
                outcomes.append(f"{type(error).__name__}: {error}")
            else:
                execution = await handle.get_execution()
                outcomes.append(execution.status)
        assert isinstance(storage, PostgresDurableStorage)
        stored = await storage.count_task_executions_by_status()
    assert outcomes == ["ready"] * 10
    assert stored == {"ready": 11}
    assert SECRET not in caplog.text


class Traffic:
    """An application that keeps enqueueing, retrying whatever fails, and a task that records
    when it ran: the two figures of a recovery."""

    def __init__(self) -> None:
        self.enqueued: list[float] = []  # monotonic times at which enqueue_task returned
        self.completed: list[float] = []  # ... and at which runs happened
        self.failures: list[str] = []
        self.stop = asyncio.Event()
        self.progress = asyncio.Event()  # set at every enqueue and run

    async def run(self, ctx: TaskContext, value: int) -> int:
        self.completed.append(time.monotonic())
        self.progress.set()
        return value

    async def enqueue_forever(self, executor: DurableExecutor, task: Task[int, int]) -> None:
        value = 0
        while not self.stop.is_set():
            try:
                await executor.enqueue_task(task, value)
            except Exception as error:
                self.failures.append(type(error).__name__)
                await asyncio.sleep(0.1)
            else:
                self.enqueued.append(time.monotonic())
                self.progress.set()
                value += 1
                await asyncio.sleep(0.05)

    async def both_after(self, moment: float) -> None:
        """Returns once an enqueue and a run have both happened since ``moment``."""
        while not (
            any(t >= moment for t in self.enqueued) and any(t >= moment for t in self.completed)
        ):
            self.progress.clear()
            await self.progress.wait()

    def first_after(self, times: list[float], moment: float) -> float:
        later = [t - moment for t in times if t >= moment]
        return later[0] if later else math.inf


@pytest.mark.parametrize("outage_s", [3.0, 8.0])
async def test_enqueues_and_completions_resume_soon_after_a_restart(
    private_postgres: PrivatePostgres, caplog: pytest.LogCaptureFixture, outage_s: float
) -> None:
    caplog.set_level(logging.INFO)
    traffic = Traffic()
    async with open_storage(_url(private_postgres)) as storage:
        executor = DurableExecutor(storage)  # the default idle poll (500 ms)
        task = executor.task(id="record", timeout_ms=10_000, run=traffic.run)
        async with executor:
            enqueuer = asyncio.create_task(traffic.enqueue_forever(executor, task))
            try:
                await asyncio.sleep(1.0)
                assert traffic.completed  # the worker runs what is enqueued
                await asyncio.to_thread(private_postgres.stop)
                await asyncio.sleep(outage_s)
                # Measured from the moment the start begins: the server accepts connections
                # before ``start`` returns, and an enqueue may well succeed in between.
                up = time.monotonic()
                await asyncio.to_thread(private_postgres.start)
                await asyncio.wait_for(traffic.both_after(up), 60)
            finally:
                traffic.stop.set()
                await enqueuer
    enqueued_s = traffic.first_after(traffic.enqueued, up)
    completed_s = traffic.first_after(traffic.completed, up)
    print(  # the measured figures the issue asks for
        f"\nafter a {outage_s:.0f} s outage: an enqueue succeeded {enqueued_s:.2f} s and the worker"
        f" completed a run {completed_s:.2f} s after the server began to start again"
        f" ({len(traffic.failures)} enqueues failed meanwhile: {sorted(set(traffic.failures))})"
    )
    assert enqueued_s < RECOVERY_BOUND_S
    assert completed_s < RECOVERY_BOUND_S
    # Shorter than the pool's 30 s connection wait: the enqueues waited, none failed.
    assert traffic.failures == []
    assert SECRET not in caplog.text
