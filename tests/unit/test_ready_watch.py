"""An executor on a storage that watches for ready work wakes on its notices, not its polls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from durable_execution import DurableExecutor, TaskContext
from durable_execution.storage import DurableStorageTx, InMemoryStorage
from durable_execution.storage.types import ReadyWatchingStorage

HOUR_MS = 3_600_000


class WatchedStorage:
    """A real in-memory storage plus a ready watch whose notices the test sends by hand."""

    def __init__(self) -> None:
        self.inner = InMemoryStorage()
        self.watchers: list[Callable[[], None]] = []
        self.exits = 0

    def transaction(self) -> AbstractAsyncContextManager[DurableStorageTx]:
        return self.inner.transaction()

    @asynccontextmanager
    async def watch_ready(self, on_ready: Callable[[], None]) -> AsyncIterator[None]:
        self.watchers.append(on_ready)
        try:
            yield
        finally:
            self.watchers.remove(on_ready)
            self.exits += 1


async def test_work_enqueued_elsewhere_starts_on_the_notice_not_the_next_poll() -> None:
    storage = WatchedStorage()
    assert isinstance(storage, ReadyWatchingStorage)
    ran = asyncio.Event()

    async def run(ctx: TaskContext, _: None) -> None:
        ran.set()

    # The worker would poll for others' work only once an hour.
    worker = DurableExecutor(storage, background_process_intra_batch_sleep_ms=HOUR_MS)
    worker.task(id="t", timeout_ms=1000, run=run)
    # Another "process": enqueues without waking the worker in-process.
    producer = DurableExecutor(storage.inner)
    task = producer.task(id="t", timeout_ms=1000, run=run)
    async with worker:
        assert len(storage.watchers) == 1
        await asyncio.sleep(0.05)  # the worker found nothing and sleeps its hour
        await producer.enqueue_task(task)
        await asyncio.sleep(0.2)
        assert not ran.is_set()  # nothing told the worker yet
        for notify in storage.watchers:
            notify()
        await asyncio.wait_for(ran.wait(), timeout=5)
    assert storage.watchers == []
    assert storage.exits == 1
