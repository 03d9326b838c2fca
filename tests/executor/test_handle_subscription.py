"""A handle is subscribed from its creation: a finish committed here meanwhile is not read back.

``enqueue_task`` creates the handle (and so its subscription) before the insert is sent, so a
handle awaited after its execution finished in this process returns the committed row it was
handed, without a storage read; and a handle nobody keeps leaves nothing behind in the notifier.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from durable_execution import DurableExecutor, TaskContext
from durable_execution.storage import DurableStorage, DurableStorageTx, InMemoryStorage
from durable_execution.storage.types import TaskExecutionRecord


class _CountingTx:
    """The real transaction, counting the reads by id made through it (full rows, and the
    finished-ids poll)."""

    def __init__(self, inner: DurableStorageTx, reads: list[list[str]]) -> None:
        self._inner = inner
        self._reads = reads

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    async def get_task_executions(self, execution_ids: Sequence[str]) -> list[TaskExecutionRecord]:
        self._reads.append(list(execution_ids))
        return await self._inner.get_task_executions(execution_ids)

    async def get_finished_task_execution_ids(self, execution_ids: Sequence[str]) -> list[str]:
        self._reads.append(list(execution_ids))
        return await self._inner.get_finished_task_execution_ids(execution_ids)


class _CountingStorage:
    def __init__(self, inner: DurableStorage) -> None:
        self.inner = inner
        self.reads: list[list[str]] = []

    def transaction(self) -> AbstractAsyncContextManager[DurableStorageTx]:
        @asynccontextmanager
        async def counted() -> AsyncIterator[DurableStorageTx]:
            async with self.inner.transaction() as tx:
                yield _CountingTx(tx, self.reads)  # type: ignore[misc]

        return counted()


def _read_ids(reads: list[list[str]]) -> set[str]:
    return {execution_id for ids in reads for execution_id in ids}


async def _status(storage: DurableStorage, execution_id: str) -> str:
    async with storage.transaction() as tx:
        [row] = await tx.get_task_executions([execution_id])
    return row.status


async def _double(ctx: TaskContext, value: int) -> int:
    return value * 2


async def test_a_handle_awaited_after_the_finish_does_not_read_the_row() -> None:
    storage = _CountingStorage(InMemoryStorage())
    executor = DurableExecutor(storage)
    task = executor.task(id="double", timeout_ms=10_000, run=_double)
    async with executor:
        handle = await executor.enqueue_task(task, 21)
        for _ in range(2000):  # until it finished, read past the counting wrapper
            if await _status(storage.inner, handle.execution_id) == "completed":
                break
            await asyncio.sleep(0.005)
        reads_before = len(storage.reads)

        execution = await handle.wait_and_get_finished_execution()

        assert execution.status == "completed"
        assert execution.output == 42
        assert handle.execution_id not in _read_ids(storage.reads[reads_before:])


async def test_a_handle_nobody_keeps_leaves_no_subscription() -> None:
    executor = DurableExecutor(InMemoryStorage())
    task = executor.task(id="double", timeout_ms=10_000, run=_double)
    handles = await executor.enqueue_tasks(task, range(10))
    handles.append(await executor.enqueue_task(task, 10))
    notifier = executor._rt.notifier
    assert len(notifier._subscriptions) == 11

    del handles
    gc.collect()

    assert len(notifier._subscriptions) == 0
