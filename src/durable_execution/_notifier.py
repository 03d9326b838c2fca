"""In-process wake-ups for handles waiting for an execution to finish.

Whenever this executor commits a finished status it calls :meth:`FinishedNotifier.notify`, so a
waiting handle wakes at once instead of sleeping out its polling interval. Where the writer knows
the row it just committed (a run's result), it hands the record over too, and the handle returns
it without reading the row back. Changes made by other processes are still found by the handle's
fallback polling.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterable, Mapping
from functools import partial
from typing import TypeAlias

from durable_execution.storage.types import TaskExecutionRecord


class FinishedSubscription:
    """The mailbox of the handles of one execution: ``record`` is the finished row once this
    process committed it (if the writer knew it), ``generation`` counts the notices.

    Created with the handle — by ``enqueue_task`` before the insert is even sent — and alive as
    long as a handle refers to it (the notifier holds it weakly), so a handle that starts waiting
    after its execution finished here finds the row in it instead of reading it back: with
    thousands of handles awaited after a burst of enqueues, most had finished by then.

    A waiting handle parks on one plain future (see :meth:`wait`), woken by a notice — from this
    process's writers, or from the finished poller's shared periodic poll — not on an
    ``asyncio.Event`` inside an ``asyncio.timeout`` per polling interval.
    """

    __slots__ = ("__weakref__", "_waiters", "generation", "poll_error", "record")

    def __init__(self) -> None:
        self.generation = 0
        self.record: TaskExecutionRecord | None = None
        # Why the last shared poll could not look (the storage is down), for the handle to say.
        self.poll_error: Exception | None = None
        self._waiters: list[asyncio.Future[bool]] = []

    def wake(self, record: TaskExecutionRecord | None, poll_error: Exception | None = None) -> None:
        self.generation += 1
        if record is not None:
            self.record = record
        if poll_error is not None:
            self.poll_error = poll_error
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(True)

    async def wait(self, seen: int, poll: asyncio.Future[bool] | None = None) -> None:
        """Until a notice newer than generation ``seen`` (at once if there was one already),
        or until ``poll`` (a storage check of the finish, raced with the notice) finds the
        execution finished or fails (a poll that finds it active changes nothing). ``poll`` is
        the caller's: left running when the wait ends first."""
        if self.generation != seen:
            return
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        forward = partial(_forward, waiter)
        if poll is not None:
            poll.add_done_callback(forward)
        try:
            await waiter
        finally:
            self._waiters.remove(waiter)
            if poll is not None:
                poll.remove_done_callback(forward)


def poll_says_read(poll: asyncio.Future[bool]) -> bool:
    """Whether a finished poll sends its handle to read the row: it found the execution
    finished, or it failed (the storage is down: the read rides the outage out)."""
    return poll.cancelled() or poll.exception() is not None or poll.result()


def _forward(waiter: asyncio.Future[bool], poll: asyncio.Future[bool]) -> None:
    if not waiter.done() and poll_says_read(poll):
        waiter.set_result(True)


# A subscription and its generation when it was taken (notices after that one count).
Subscribed: TypeAlias = tuple[FinishedSubscription, int]


def subscribe(notifier: FinishedNotifier, execution_id: str) -> Subscribed:
    subscription = notifier.subscribe(execution_id)
    return subscription, subscription.generation


class FinishedNotifier:
    def __init__(self) -> None:
        # Weak: a subscription lives as long as its handles, and leaves with the last of them
        # (a handle that is never awaited must not keep an entry here forever).
        self._subscriptions: weakref.WeakValueDictionary[str, FinishedSubscription] = (
            weakref.WeakValueDictionary()
        )

    def subscribe(self, execution_id: str) -> FinishedSubscription:
        """The subscription of ``execution_id``'s handles (shared by all of them)."""
        subscription = self._subscriptions.get(execution_id)
        if subscription is None:
            subscription = FinishedSubscription()
            self._subscriptions[execution_id] = subscription
        return subscription

    def notify(
        self,
        execution_ids: Iterable[str],
        records: Mapping[str, TaskExecutionRecord] | None = None,
    ) -> None:
        """Wake the waiters of ``execution_ids``; ``records`` holds the committed rows known."""
        subscriptions = self._subscriptions
        if not subscriptions:
            return
        for execution_id in execution_ids:
            subscription = subscriptions.get(execution_id)
            if subscription is not None:
                subscription.wake(None if records is None else records.get(execution_id))
