"""One storage read for the fallback polls of every waiting handle.

A handle learns about executions this process finishes from the in-process notifier; it polls
storage only to see work finished by other processes. Polled one handle at a time, N waiting
handles cost N full-row reads per polling interval, which saturated the event loop and the
connection pool at a few thousand handles. Here every poll asked within a short window joins
one ids-only query per chunk of executions instead.

Periodic polls are not even asked one by one: a waiting handle *watches* its execution with its
polling interval, and one timer per interval polls every execution watched with it, waking the
subscriptions of those found finished (their handles then read the row). A handle needs no timer
and no future of its own per interval: with 10,000 handles waiting out a long burst, per-handle
polls cost more than the executions themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final

from durable_execution._notifier import FinishedSubscription
from durable_execution._transactions import TransactionRunner
from durable_execution.storage.types import DurableStorageTx

# Polls asked within this window share a read; small next to any polling interval.
COALESCE_WINDOW_S: Final = 0.02
# Ids per query: well under SQLite's bound-variable limit.
CHUNK_SIZE: Final = 500


class _Watchers:
    """The executions watched with one polling interval, and the timer of their next poll."""

    __slots__ = ("by_id", "timer")

    def __init__(self) -> None:
        # execution_id -> its subscription and how many waits watch it.
        self.by_id: dict[str, tuple[FinishedSubscription, int]] = {}
        self.timer: asyncio.TimerHandle | None = None


class FinishedPoller:
    def __init__(self, transactions: TransactionRunner) -> None:
        self._transactions = transactions
        self._pending: dict[str, list[asyncio.Future[bool]]] = {}
        self._flush_scheduled = False
        self._flushes: set[asyncio.Task[None]] = set()
        self._watched: dict[float, _Watchers] = {}

    def watch(
        self, execution_id: str, subscription: FinishedSubscription, interval_s: float
    ) -> None:
        """Poll ``execution_id`` every ``interval_s`` (with every other execution watched with
        that interval) until :meth:`unwatch`; a poll that finds it finished, or that fails,
        wakes ``subscription``."""
        watchers = self._watched.get(interval_s)
        if watchers is None:
            watchers = self._watched[interval_s] = _Watchers()
        _, count = watchers.by_id.get(execution_id, (subscription, 0))
        watchers.by_id[execution_id] = (subscription, count + 1)
        if watchers.timer is None:
            watchers.timer = asyncio.get_running_loop().call_later(
                interval_s, self._start_poll, interval_s
            )

    def unwatch(self, execution_id: str, interval_s: float) -> None:
        watchers = self._watched.get(interval_s)
        if watchers is None or execution_id not in watchers.by_id:
            return
        subscription, count = watchers.by_id[execution_id]
        if count > 1:
            watchers.by_id[execution_id] = (subscription, count - 1)
            return
        del watchers.by_id[execution_id]
        if not watchers.by_id:
            if watchers.timer is not None:
                watchers.timer.cancel()
            del self._watched[interval_s]

    def _start_poll(self, interval_s: float) -> None:
        watchers = self._watched.get(interval_s)
        if watchers is None:
            return
        watchers.timer = None
        task = asyncio.get_running_loop().create_task(self._poll(interval_s, watchers))
        self._flushes.add(task)  # keep a reference until it is done
        task.add_done_callback(self._flushes.discard)

    async def _poll(self, interval_s: float, watchers: _Watchers) -> None:
        ids = list(watchers.by_id)
        error: Exception | None = None
        try:
            finished: set[str] = set()
            for start in range(0, len(ids), CHUNK_SIZE):
                finished.update(
                    await self._transactions.run(_finished_ids(ids[start : start + CHUNK_SIZE]))
                )
        except Exception as failure:
            error, finished = failure, set(ids)  # each waiting handle says it cannot look yet
        for execution_id in finished:
            watched = watchers.by_id.get(execution_id)
            if watched is not None:
                watched[0].wake(None, error)
        # The next poll an interval after this one ended (polls never overlap), if any is left.
        if self._watched.get(interval_s) is watchers and watchers.timer is None:
            watchers.timer = asyncio.get_running_loop().call_later(
                interval_s, self._start_poll, interval_s
            )

    async def is_finished(self, execution_id: str) -> bool:
        """Whether ``execution_id`` has a finished status now (False if it does not exist)."""
        return await self.finished_future(execution_id)

    def finished_future(self, execution_id: str) -> asyncio.Future[bool]:
        """:meth:`is_finished` as a future; cancel it if the answer is no longer wanted (an id
        whose every future was cancelled is left out of the query)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._pending.setdefault(execution_id, []).append(future)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_later(COALESCE_WINDOW_S, self._start_flush)
        return future

    def _start_flush(self) -> None:
        task = asyncio.get_running_loop().create_task(self._flush())
        self._flushes.add(task)  # keep a reference until it is done
        task.add_done_callback(self._flushes.discard)

    async def _flush(self) -> None:
        batch, self._pending, self._flush_scheduled = self._pending, {}, False
        ids = [i for i, futures in batch.items() if not all(f.done() for f in futures)]
        if not ids:
            return
        try:
            finished: set[str] = set()
            for start in range(0, len(ids), CHUNK_SIZE):
                finished.update(
                    await self._transactions.run(_finished_ids(ids[start : start + CHUNK_SIZE]))
                )
        except Exception as error:
            for futures in batch.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(error)
            return
        for execution_id, futures in batch.items():
            for future in futures:
                if not future.done():  # its waiter may have been cancelled meanwhile
                    future.set_result(execution_id in finished)


def _finished_ids(chunk: list[str]) -> Callable[[DurableStorageTx], Awaitable[list[str]]]:
    async def read(tx: DurableStorageTx) -> list[str]:
        return await tx.get_finished_task_execution_ids(chunk)

    return read
