"""In-process wake-ups for handles waiting for an execution to finish.

Whenever this executor commits a finished status it calls :meth:`FinishedNotifier.notify`, so a
waiting handle wakes at once instead of sleeping out its polling interval. Where the writer knows
the row it just committed (a run's result), it hands the record over too, and the handle returns
it without reading the row back. Changes made by other processes are still found by the handle's
fallback polling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from durable_execution.storage.types import TaskExecutionRecord


class FinishedSubscription:
    """One waiter's mailbox: ``notified`` is set on a finish; ``record`` is the row if known.

    A waiting handle parks on one future at a time (see :meth:`wait`), woken by the notifier or
    by its polling timer: a plain future and a timer handle, not an ``asyncio.Event`` wrapped in
    an ``asyncio.timeout`` (which costs a context manager, a timer and a cancellation dance per
    wait) — the difference shows with thousands of waiting handles.
    """

    __slots__ = ("_waiter", "notified", "record")

    def __init__(self) -> None:
        self.notified = False
        self.record: TaskExecutionRecord | None = None
        self._waiter: asyncio.Future[bool] | None = None

    def wake(self) -> None:
        self.notified = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    async def wait(self, timeout_s: float) -> bool:
        """Until notified (True, at once if notified already) or ``timeout_s`` passed (False)."""
        if self.notified:
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiter = waiter
        timer = loop.call_later(timeout_s, _expire, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class FinishedNotifier:
    def __init__(self) -> None:
        self._waiters: dict[str, set[FinishedSubscription]] = {}

    def subscribe(self, execution_id: str) -> FinishedSubscription:
        subscription = FinishedSubscription()
        self._waiters.setdefault(execution_id, set()).add(subscription)
        return subscription

    def unsubscribe(self, execution_id: str, subscription: FinishedSubscription) -> None:
        waiters = self._waiters.get(execution_id)
        if waiters is None:
            return
        waiters.discard(subscription)
        if not waiters:
            del self._waiters[execution_id]

    def notify(
        self,
        execution_ids: Iterable[str],
        records: Mapping[str, TaskExecutionRecord] | None = None,
    ) -> None:
        """Wake the waiters of ``execution_ids``; ``records`` holds the committed rows known."""
        if not self._waiters:
            return
        for execution_id in execution_ids:
            for subscription in self._waiters.get(execution_id, ()):
                if records is not None:
                    subscription.record = records.get(execution_id)
                subscription.wake()
