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

A caller that gives up (cancelled, or timed out by ``asyncio.wait_for``) withdraws its request if
the request has not been sent yet — also when its batch is already waiting for a connection or a
lock, or is being retried after a failure that happened before the request was part of it: the
batch's work is given the requests still wanted at the moment it runs. Once a request was sent
it stays in its batch, whose COMMIT may succeed after the caller left; that outcome is unknown to
the caller (as for any commit racing a cancellation).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from durable_execution._transactions import TransactionRunner, is_transient
from durable_execution.storage.types import DurableStorageTx

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")

BatchWork = Callable[[DurableStorageTx, Sequence[_Item]], Awaitable[Sequence[_Result]]]


@dataclass(eq=False)
class _Request(Generic[_Item, _Result]):
    item: _Item
    future: asyncio.Future[_Result]
    sent: bool = False  # part of a transaction already: no longer withdrawn by its caller


class Coalescer(Generic[_Item, _Result]):
    def __init__(
        self,
        transactions: TransactionRunner,
        work: BatchWork[_Item, _Result],
        *,
        max_batch: int,
        again: BatchWork[_Item, _Result] | None = None,
        single_statement: Callable[[Sequence[_Item]], bool] | None = None,
    ) -> None:
        """``work(tx, items)`` does ``items`` in ``tx`` and returns one result per item;
        ``again`` is what a retry does once ``work`` was started (see TransactionRunner.run);
        ``single_statement(items)`` says whether ``work`` on those items (or on any part of
        them) is one statement, which lets the storage skip BEGIN and COMMIT."""
        self._transactions = transactions
        self._work = work
        self._again = again
        self._max_batch = max_batch
        self._single_statement = single_statement
        self._queue: list[_Request[_Item, _Result]] = []
        self._drain_task: asyncio.Task[None] | None = None

    async def submit(self, item: _Item) -> _Result:
        """Do ``item`` in the next transaction; its result once that transaction committed."""
        future: asyncio.Future[_Result] = asyncio.get_running_loop().create_future()
        self._queue.append(_Request(item, future))
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
                live = [request for request in batch if not request.future.done()]
                if live:
                    await self._commit(live)
        finally:
            self._drain_task = None

    async def _run(self, batch: list[_Request[_Item, _Result]]) -> None:
        """Run ``batch`` in one transaction (retried as the runner does) and resolve the
        requests it sent; raises what the transaction raised."""
        sending: list[_Request[_Item, _Result]] = []

        def attempt(
            work: BatchWork[_Item, _Result],
        ) -> Callable[[DurableStorageTx], Awaitable[Sequence[_Result]]]:
            async def run(tx: DurableStorageTx) -> Sequence[_Result]:
                nonlocal sending
                # Decided now, with the transaction open: a caller that gave up while the batch
                # waited for a connection, a lock or a retry is left out.
                sending = [r for r in batch if r.sent or not r.future.done()]
                if not sending:
                    return []
                for request in sending:
                    request.sent = True
                return await work(tx, [request.item for request in sending])

            return run

        # A request sent before (in a batch that failed) may be stored: go straight to again.
        first = self._work if self._again is None or not any(r.sent for r in batch) else self._again
        single = (
            first is self._work
            and self._single_statement is not None
            and self._single_statement([request.item for request in batch])
        )
        results = await self._transactions.run(
            attempt(first),
            again=None if self._again is None else attempt(self._again),
            single_statement=single,
        )
        for request, result in zip(sending, results, strict=True):
            _resolve(request.future, result)

    async def _commit(self, batch: list[_Request[_Item, _Result]]) -> None:
        try:
            await self._run(batch)
        except Exception as error:
            if len(batch) == 1 or is_transient(error):
                # Its own error for a lone caller; for a transient one (the storage is in trouble)
                # every caller gets it and applies its own retry policy.
                for request in batch:
                    _fail(request.future, error)
                return
            for request in batch:  # isolate the request that cannot succeed
                if not request.future.done():
                    try:
                        await self._run([request])
                    except Exception as alone_error:
                        _fail(request.future, alone_error)


# A future may be done already: its caller was cancelled while the batch ran.
def _resolve(future: asyncio.Future[_Result], result: _Result) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[_Result], error: Exception) -> None:
    if not future.done():
        future.set_exception(error)
