"""PostgreSQL ready watches: LISTEN/NOTIFY across storages ("processes") on one database.

Two storage objects on one URL stand for two processes: each has its own pool, and the watch its
own connection, so a notice goes through the server exactly as between processes.

A notice that must *not* be sent is checked by a plain listening session (a probe) and a marker:
after the action under test the probe notifies itself, and PostgreSQL delivers notices in commit
order, so any notice of the earlier action arrives before the marker: none before it proves there
was none. Every test uses a table name of its own, because channels are per
database and the test schemas share one.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from durable_execution import DurableExecutor, TaskContext
from durable_execution.generated.postgresql._table import TABLE_NAME_MAX_LENGTH
from durable_execution.storage import PostgresDurableStorage, TaskExecutionRecord, open_storage
from durable_execution.storage._pg_listener import ready_channel
from durable_execution.storage.types import ReadyWatchingStorage

from ._records import insert, record

BOUND_S = 10.0  # liveness bound for something that should happen at once
HOUR_MS = 3_600_000


class Calls:
    """An on_ready callback that counts its calls and lets a test wait for the n-th."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Event()

    def __call__(self) -> None:
        self.count += 1
        self._changed.set()

    async def reach(self, n: int) -> None:
        async with asyncio.timeout(BOUND_S):
            while self.count < n:
                self._changed.clear()
                await self._changed.wait()


def fresh_table() -> str:
    return f"t_{secrets.token_hex(6)}"


@asynccontextmanager
async def pg_storage(url: str, table: str) -> AsyncIterator[PostgresDurableStorage]:
    async with open_storage(url, table_name=table, pool_min_size=1) as storage:
        assert isinstance(storage, PostgresDurableStorage)
        yield storage


def watch(storage: PostgresDurableStorage, calls: Calls) -> AbstractAsyncContextManager[None]:
    return storage.watch_ready(calls)


def listening_pids(url: str, table: str) -> set[int]:
    """Backends whose latest statement was this table's LISTEN (the watch's sessions)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = %s",
            [f'LISTEN "{ready_channel(table)}"'],
        ).fetchall()
    return {row[0] for row in rows}


async def wait_for_pids(url: str, table: str, predicate: Callable[[set[int]], bool]) -> set[int]:
    """The listening sessions once ``predicate`` holds (pg_stat_activity cannot be awaited)."""
    async with asyncio.timeout(BOUND_S):
        while True:
            pids = listening_pids(url, table)
            if predicate(pids):
                return pids
            await asyncio.sleep(0.05)


class Probe:
    """A plain LISTEN session on a table's channel that reports the payloads it received."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], channel: str) -> None:
        self._conn = conn
        self._channel = channel

    async def until_marker(self) -> list[str]:
        """The payloads received before a marker notice sent now (commit order is delivery
        order, so anything committed earlier has arrived by then)."""
        await self._conn.execute("SELECT pg_notify(%s, 'marker')", [self._channel])
        payloads: list[str] = []
        async with asyncio.timeout(BOUND_S):
            async for notice in self._conn.notifies():
                if notice.payload == "marker":
                    return payloads
                payloads.append(notice.payload)
        raise AssertionError("unreachable: notifies() without a timeout never ends")


@asynccontextmanager
async def probe(url: str, table: str) -> AsyncIterator[Probe]:
    channel = ready_channel(table)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        yield Probe(conn, channel)


def listen_tasks() -> list[asyncio.Task[Any]]:
    return [
        t
        for t in asyncio.all_tasks()
        if t.get_name().startswith("durable-execution:listen") and not t.done()
    ]


def later() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)


@pytest.fixture
def table() -> str:
    return fresh_table()


# --- the channel --------------------------------------------------------------------------------


def test_channels_follow_postgresql_name_folding_and_fit_the_identifier_limit() -> None:
    assert ready_channel("durable_task_executions") == "durable_task_executions_ready"
    # The SQL names the table unquoted, so these are one table: one channel.
    assert ready_channel("MyTable") == ready_channel("mytable")
    assert ready_channel("a") != ready_channel("b")
    assert len(ready_channel("x" * TABLE_NAME_MAX_LENGTH).encode()) <= 63


def test_the_postgres_storage_offers_ready_watches() -> None:
    storage = PostgresDurableStorage("postgresql://127.0.0.1:1/none")
    assert isinstance(storage, ReadyWatchingStorage)


# --- notices between two storages ---------------------------------------------------------------


async def test_a_committed_ready_insert_elsewhere_calls_the_watch(
    postgres_url: str, table: str
) -> None:
    async with pg_storage(postgres_url, table) as a, pg_storage(postgres_url, table) as b:
        calls = Calls()
        async with watch(a, calls):
            async with b.transaction() as tx:
                await tx.insert_task_executions([record("te_1"), record("te_2")])
                await tx.insert_task_executions([record("te_3")])
            await calls.reach(1)


class CountedNotices:
    """Counts the storage's ``pg_notify`` statements (each runs in a transaction of its own)."""

    def __init__(self, storage: PostgresDurableStorage) -> None:
        self.count = 0
        original = storage.queries.notify_ready

        async def counted(conn: psycopg.AsyncConnection[Any], *, channel: str) -> None:
            self.count += 1
            await original(conn, channel=channel)

        storage.queries.notify_ready = counted  # type: ignore[method-assign]


async def wait_for_notices(conn: psycopg.AsyncConnection[Any], n: int) -> None:
    async with asyncio.timeout(BOUND_S):
        received = 0
        async for _ in conn.notifies():
            received += 1
            if received == n:
                return


async def test_a_committed_transaction_is_followed_by_one_notice(
    postgres_url: str, table: str
) -> None:
    async with pg_storage(postgres_url, table) as b, probe(postgres_url, table) as notices:
        counted = CountedNotices(b)
        async with b.transaction() as tx:
            await tx.insert_task_executions([record("te_1"), record("te_2")])
            await tx.insert_task_executions([record("te_3")])
        # Sent after the commit, by the storage: wait for it, then nothing more follows.
        await wait_for_notices(notices._conn, 1)
        assert await notices.until_marker() == []
        assert counted.count == 1


async def test_many_concurrent_transactions_share_debounced_notices(
    postgres_url: str, table: str
) -> None:
    """No inserting transaction notifies (none takes the notify lock at commit): the storage
    sends at most one notice per interval after them, and always one after the last commit."""
    transactions = 60
    async with (
        pg_storage(postgres_url, table) as b,
        probe(postgres_url, table) as notices,
        pg_storage(postgres_url, table) as a,
    ):
        counted = CountedNotices(b)
        calls = Calls()
        async with watch(a, calls):
            await calls.reach(0)
            await asyncio.gather(*(insert(b, record(f"te_{i}")) for i in range(transactions)))
            after_last_commit = calls.count
            # The last commit is followed by a notice: the watch is called again.
            await calls.reach(after_last_commit + 1)
        await asyncio.sleep(0.1)  # any trailing notice of the interval has been sent
        received = await notices.until_marker()
        # Typically 3 or 4 for 60 transactions; a quarter leaves room for a loaded machine.
        assert 1 <= len(received) == counted.count < transactions // 4


async def insert_then_roll_back(storage: PostgresDurableStorage, rec: TaskExecutionRecord) -> None:
    async with storage.transaction() as tx:
        await tx.insert_task_executions([rec])
        raise RuntimeError("roll back")


async def test_a_rolled_back_insert_notifies_nothing(postgres_url: str, table: str) -> None:
    async with pg_storage(postgres_url, table) as b, probe(postgres_url, table) as notices:
        with pytest.raises(RuntimeError, match="roll back"):
            await insert_then_roll_back(b, record("te_rolled_back"))
        assert await notices.until_marker() == []


async def test_executions_not_ready_now_notify_nothing(postgres_url: str, table: str) -> None:
    # Work that starts later is found by polling when it is due; a notice now would find nothing.
    async with pg_storage(postgres_url, table) as b, probe(postgres_url, table) as notices:
        await insert(b, replace(record("te_future"), start_at=later()))
        await insert(b, record("te_waiting", status="waiting_for_children_tasks"))
        assert await notices.until_marker() == []


async def test_another_table_in_the_database_notifies_nothing(
    postgres_url: str, table: str
) -> None:
    other = fresh_table()
    async with pg_storage(postgres_url, other) as elsewhere, probe(postgres_url, table) as notices:
        await insert(elsewhere, record("te_other"))
        assert await notices.until_marker() == []


async def test_several_watches_on_one_storage_are_all_called(postgres_url: str, table: str) -> None:
    async with pg_storage(postgres_url, table) as a, pg_storage(postgres_url, table) as b:
        first, second = Calls(), Calls()
        async with watch(a, first), watch(a, second):
            assert len(await wait_for_pids(postgres_url, table, lambda p: len(p) == 2)) == 2
            await insert(b, record("te_1"))
            await first.reach(1)
            await second.reach(1)


# --- connection loss and cleanup ----------------------------------------------------------------


async def test_a_terminated_session_reconnects_calls_the_watch_and_keeps_listening(
    postgres_url: str, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="durable_execution")
    async with pg_storage(postgres_url, table) as a, pg_storage(postgres_url, table) as b:
        calls = Calls()
        async with watch(a, calls):
            (pid,) = await wait_for_pids(postgres_url, table, lambda p: len(p) == 1)
            with psycopg.connect(postgres_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", [pid])
            # Notices sent while it was away are lost: reconnecting calls on_ready itself.
            await calls.reach(1)
            (new_pid,) = await wait_for_pids(postgres_url, table, lambda p: len(p) == 1)
            assert new_pid != pid
            await insert(b, record("te_after"))
            await calls.reach(2)
    assert "lost its connection" in caplog.text


async def test_exiting_the_watch_stops_its_task_and_closes_its_session(
    postgres_url: str, table: str
) -> None:
    async with pg_storage(postgres_url, table) as a:
        async with watch(a, Calls()):
            assert len(listen_tasks()) == 1
            assert len(await wait_for_pids(postgres_url, table, lambda p: len(p) == 1)) == 1
        assert listen_tasks() == []
        # The server notices the closed session on its own schedule: wait for it, bounded.
        assert await wait_for_pids(postgres_url, table, lambda p: not p) == set()


async def test_a_failing_callback_does_not_stop_the_watch(
    postgres_url: str, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    calls = Calls()
    failures = 0

    def on_ready() -> None:
        nonlocal failures
        calls()
        if calls.count == 1:
            failures += 1
            raise RuntimeError("callback bug")

    async with (
        pg_storage(postgres_url, table) as a,
        pg_storage(postgres_url, table) as b,
        a.watch_ready(on_ready),
    ):
        await insert(b, record("te_1"))
        await calls.reach(1)
        await insert(b, record("te_2"))
        await calls.reach(2)
    assert failures == 1
    assert "callback failed" in caplog.text


# --- the executor -------------------------------------------------------------------------------


async def test_an_executor_starts_work_enqueued_by_another_process_on_the_notice(
    postgres_url: str, table: str
) -> None:
    ran = asyncio.Event()

    async def run(ctx: TaskContext, _: None) -> None:
        ran.set()

    async with pg_storage(postgres_url, table) as a, pg_storage(postgres_url, table) as b:
        # The worker would poll for others' work only once an hour.
        worker = DurableExecutor(a, background_process_intra_batch_sleep_ms=HOUR_MS)
        worker.task(id="t", timeout_ms=10_000, run=run)
        producer = DurableExecutor(b)  # never started: it only enqueues, like another process
        task = producer.task(id="t", timeout_ms=10_000, run=run)
        async with worker:
            await wait_for_pids(postgres_url, table, lambda p: len(p) == 1)
            await asyncio.sleep(0.05)  # let the worker find nothing and settle into its hour
            await producer.enqueue_task(task)
            async with asyncio.timeout(BOUND_S):
                await ran.wait()
        assert listen_tasks() == []


# --- poll-only (listen=False) -------------------------------------------------------------------


async def test_without_listen_no_session_listens_and_work_completes_by_polling(
    postgres_url: str, table: str
) -> None:
    """For PgBouncer in transaction mode: no LISTEN session at all; the idle poll finds work."""
    ran = asyncio.Event()

    async def run(ctx: TaskContext, _: None) -> None:
        ran.set()

    async with (
        open_storage(postgres_url, table_name=table, listen=False) as a,
        pg_storage(postgres_url, table) as b,
    ):
        assert isinstance(a, PostgresDurableStorage)
        worker = DurableExecutor(a, background_process_intra_batch_sleep_ms=100)
        worker.task(id="t", timeout_ms=10_000, run=run)
        producer = DurableExecutor(b)  # never started: it only enqueues
        task = producer.task(id="t", timeout_ms=10_000, run=run)
        async with worker:
            await asyncio.sleep(0.3)  # a listening session would have started by now
            assert listening_pids(postgres_url, table) == set()
            assert listen_tasks() == []
            await producer.enqueue_task(task)
            async with asyncio.timeout(BOUND_S):
                await ran.wait()
            assert listening_pids(postgres_url, table) == set()


async def test_listen_is_a_postgresql_option_only(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="listen does not apply to sqlite"):
        async with open_storage(f"sqlite:///{tmp_path}/x.db", listen=False):
            pass
    with pytest.raises(ValueError, match="listen does not apply to memory"):
        async with open_storage("memory://", listen=True):
            pass
