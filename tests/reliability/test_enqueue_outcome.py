"""Enqueue tells the truth: what the caller is told is what is stored.

* A COMMIT whose reply is lost (the connection drops right after the server committed) leaves the
  outcome unknown; the transaction is retried, and the retried insert that finds its own rows
  succeeds. Before, it failed with ``DuplicateExecutionIdError`` although the execution was
  stored, so a caller who enqueued again got the task run twice. PostgreSQL: a TCP proxy between
  psycopg and the real server loses the reply. Memory and SQLite: the commit is real and a
  wrapper raises the error a lost acknowledgement (a disk I/O error at commit) would raise after
  it — the storage itself is the real one.
* An enqueue its caller gave up on (cancelled, or timed out by ``asyncio.wait_for``) before its
  request was sent is withdrawn: it is never stored later by the coalesced batch it was queued in,
  even if that batch had already started waiting for a connection or a lock.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import pytest

from durable_execution import DurableExecutor, TaskContext
from durable_execution.storage import (
    DurableStorage,
    DurableStorageTx,
    InMemoryStorage,
    TaskExecutionRecord,
    open_storage,
)
from durable_execution.storage.types import InspectableStorage

from ._pg_proxy import CommitReplyLosingProxy

BACKENDS = ["memory", "sqlite", "postgresql"]


@asynccontextmanager
async def storage_for(
    backend: str, request: pytest.FixtureRequest, *, pool_max_size: int = 4
) -> AsyncIterator[DurableStorage]:
    """A fresh storage of ``backend`` (the database fixtures are pulled only when needed)."""
    if backend == "memory":
        yield InMemoryStorage()
    elif backend == "sqlite":
        async with open_storage(f"sqlite:///{request.getfixturevalue('sqlite_path')}") as lite:
            yield lite
    else:
        url: str = request.getfixturevalue("postgres_url")
        async with open_storage(url, pool_min_size=1, pool_max_size=pool_max_size) as pg:
            yield pg


def _double(ctx: TaskContext, value: int) -> int:
    return value * 2


async def _stored_inputs(storage: DurableStorage) -> list[str]:
    assert isinstance(storage, InspectableStorage)
    records = await storage.list_task_executions(limit=100)
    readable = [record for record in records if isinstance(record, TaskExecutionRecord)]
    assert len(readable) == len(records), records
    return sorted(record.run_input for record in readable)


# --- a lost COMMIT reply ----------------------------------------------------------------------


@asynccontextmanager
async def _proxied_postgres(
    postgres_url: str,
) -> AsyncIterator[tuple[DurableStorage, CommitReplyLosingProxy]]:
    server = urlsplit(postgres_url)
    proxy = CommitReplyLosingProxy(server.hostname or "127.0.0.1", server.port or 5432)
    await proxy.start()
    try:
        async with open_storage(proxy.url_through(postgres_url)) as storage:
            yield storage, proxy
    finally:
        await proxy.close()


@pytest.mark.parametrize("batch", [False, True], ids=["enqueue_task", "enqueue_tasks"])
async def test_postgres_enqueue_whose_commit_reply_was_lost_succeeds_once(
    postgres_url: str, batch: bool
) -> None:
    async with _proxied_postgres(postgres_url) as (storage, proxy):
        executor = DurableExecutor(storage)
        task = executor.task(id="double", timeout_ms=10_000, run=_double)
        proxy.armed = True
        if batch:
            handles = await executor.enqueue_tasks(task, [1, 2, 3])
        else:
            handles = [await executor.enqueue_task(task, 1)]
        assert proxy.cuts == 1  # the reply really was lost after the server committed
        stored = await _stored_inputs(storage)
        assert stored == (["1", "2", "3"] if batch else ["1"])  # each stored once
        for handle in handles:
            assert (await handle.get_execution()).status == "ready"
        async with executor:  # and each runs once
            for handle in handles:
                finished = await handle.wait_and_get_finished_execution(timeout_ms=10_000)
                assert finished.status == "completed"


class _LostCommitAcknowledgement:
    """The real storage, whose next transaction commits and then raises as a commit whose
    acknowledgement was lost does (SQLite: a disk I/O error reported at commit)."""

    def __init__(self, inner: DurableStorage) -> None:
        self.inner = inner
        self.armed = False
        self.cuts = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DurableStorageTx]:
        async with self.inner.transaction() as tx:
            yield tx
        if self.armed:
            self.armed = False
            self.cuts += 1
            raise sqlite3.OperationalError("disk I/O error")


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
@pytest.mark.parametrize("batch", [False, True], ids=["enqueue_task", "enqueue_tasks"])
async def test_enqueue_whose_commit_outcome_was_unknown_succeeds_once(
    request: pytest.FixtureRequest, backend: str, batch: bool
) -> None:
    async with storage_for(backend, request) as real:
        storage = _LostCommitAcknowledgement(real)
        executor = DurableExecutor(storage)
        task = executor.task(id="double", timeout_ms=10_000, run=_double)
        storage.armed = True
        if batch:
            await executor.enqueue_tasks(task, [1, 2, 3])
        else:
            await executor.enqueue_task(task, 1)
        assert storage.cuts == 1
        assert await _stored_inputs(real) == (["1", "2", "3"] if batch else ["1"])


# --- a caller that gives up -------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_an_enqueue_timed_out_before_it_was_sent_is_never_stored(
    request: pytest.FixtureRequest, backend: str
) -> None:
    # PostgreSQL: one pooled connection, so that the blocker's transaction holds back the batch.
    async with storage_for(backend, request, pool_max_size=1) as storage:
        executor = DurableExecutor(storage)
        task = executor.task(id="double", timeout_ms=10_000, run=_double)
        async with storage.transaction():  # the batch's transaction waits for this one
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(executor.enqueue_task(task, 1), 0.3)
            cancelled = asyncio.create_task(executor.enqueue_task(task, 2))
            await asyncio.sleep(0.1)
            cancelled.cancel()
        handle = await executor.enqueue_task(task, 3)  # after the withdrawn requests' batch
        await asyncio.sleep(0.2)
        assert await _stored_inputs(storage) == ["3"]
        assert (await handle.get_execution()).status == "ready"
