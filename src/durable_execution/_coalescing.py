"""Coalescing: concurrent requests of the same kind share one transaction (group commit).

A transaction costs a few round trips (or thread hops) whatever it holds, so when many runs finish,
many enqueues arrive or many handles read at once, one transaction per request caps throughput at
the transaction rate. Here a request is queued; if no transaction of its kind is in flight one
starts at once, and every request queued while it runs goes into the next one (up to
``max_batch``). A lone request therefore waits for nothing (latency is unchanged when idle), and
under load the batch size grows by itself with the transaction time.

A batch that fails for a reason in its data (a non-transient error) is not allowed to fail its
neighbours: each of its requests is then tried again alone, so one that cannot succeed (a
duplicate id, a row that cannot be decoded) fails only its own caller, and the error a caller
sees is the one its own request produced. A transient failure (the storage is down) fails the
whole batch at once: retrying its requests one by one would only stretch the outage, and each
caller has its own retry policy.

A caller that is cancelled before its batch starts is dropped from it; once the batch has started
its write may still commit (as a commit racing a cancellation always could).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from durable_execution._transactions import TransactionRunner, is_transient
from durable_execution.storage.types import DurableStorageTx

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")

BatchWork = Callable[[DurableStorageTx, Sequence[_Item]], Awaitable[Sequence[_Result]]]


class Coalescer(Generic[_Item, _Result]):
    def __init__(
        self,
        transactions: TransactionRunner,
        work: BatchWork[_Item, _Result],
        *,
        max_batch: int,
    ) -> None:
        """``work(tx, items)`` does ``items`` in ``tx`` and returns one result per item."""
        self._transactions = transactions
        self._work = work
        self._max_batch = max_batch
        self._queue: list[tuple[_Item, asyncio.Future[_Result]]] = []
        self._drain_task: asyncio.Task[None] | None = None

    async def submit(self, item: _Item) -> _Result:
        """Do ``item`` in the next transaction; its result once that transaction committed."""
        future: asyncio.Future[_Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._drain_task is None:
            self._drain_task = asyncio.create_task(
                self._drain(), name="durable-execution:coalesced-transaction"
            )
        return await future

    async def wait_idle(self) -> None:
        """Until every request submitted so far has been committed or has failed."""
        while self._drain_task is not None:
            await asyncio.shield(self._drain_task)

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                live = [(item, future) for item, future in batch if not future.done()]
                if live:
                    await self._commit(live)
        finally:
            self._drain_task = None

    async def _commit(self, batch: list[tuple[_Item, asyncio.Future[_Result]]]) -> None:
        try:
            results = await self._transactions.run(
                lambda tx: self._work(tx, [item for item, _ in batch])
            )
        except Exception as error:
            if len(batch) == 1 or is_transient(error):
                # Its own error for a lone caller; for a transient one (the storage is in trouble)
                # every caller gets it and applies its own retry policy.
                for _, future in batch:
                    _fail(future, error)
                return
            for item, future in batch:  # isolate the request that cannot succeed
                if not future.done():
                    await self._commit_alone(item, future)
            return
        for (_, future), result in zip(batch, results, strict=True):
            _resolve(future, result)

    async def _commit_alone(self, item: _Item, future: asyncio.Future[_Result]) -> None:
        try:
            (result,) = await self._transactions.run(lambda tx: self._work(tx, [item]))
        except Exception as error:
            _fail(future, error)
        else:
            _resolve(future, result)


# A future may be done already: its caller was cancelled while the batch ran.
def _resolve(future: asyncio.Future[_Result], result: _Result) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[_Result], error: Exception) -> None:
    if not future.done():
        future.set_exception(error)
