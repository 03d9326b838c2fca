"""Sending the ready notice (``pg_notify``) for one storage: after commit, debounced.

Why not inside the inserting transaction, as this storage first did: PostgreSQL serialises every
transaction that ran ``NOTIFY`` — at commit it takes a database-wide lock (the notification
queue's) and holds it until the commit is durable, WAL flush included. With many transactions
enqueuing at once, each waited for every other one's flush: commits that group commit would
otherwise share went through one at a time, and enqueue throughput collapsed to one fsync per
transaction.

So an inserting transaction sends nothing. After it committed, the storage calls
:meth:`ReadyNotices.poke`, and one background task per storage sends ``pg_notify`` in a short
transaction of its own: at once when it has been idle, else once the interval since its last
notice has passed, folding every poke that arrived meanwhile into that one notice. Hence:

* at most one notifying transaction per :data:`NOTIFY_INTERVAL_S` per process, however many
  transactions enqueue; the enqueuing transactions themselves never take the notify lock;
* no lost wake-up: every commit that made work ready is followed by a notice *sent after it*
  (a poke during a send schedules another), so a listener that wakes sees the rows;
* a rolled-back insert notifies nothing (only commits poke);
* a listener learns of work at most one interval plus a round trip later than with an
  in-transaction notice — far below the idle poll it replaces.

A notice that fails to send (server restarting) is only logged: listeners poll anyway, and the
next commit pokes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Final

logger = logging.getLogger("durable_execution.storage.postgres")

# 10 ms: at most 100 notifying transactions per second per process (each costs the server a
# serialised commit), while a woken executor in another process still starts work within about
# 10 ms of the enqueue, where the poll it replaces waits up to 500 ms.
NOTIFY_INTERVAL_S: Final = 0.010


class ReadyNotices:
    """One storage's debounced ready notices; ``send`` runs ``pg_notify`` in a transaction."""

    def __init__(
        self, send: Callable[[], Awaitable[None]], interval_s: float = NOTIFY_INTERVAL_S
    ) -> None:
        self._send = send
        self._interval_s = interval_s
        self._wanted = False
        self._last_sent = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.sent = 0  # notices sent (for tests and benchmarks)

    def poke(self) -> None:
        """A transaction that inserted work ready now committed: make sure a notice follows."""
        if self._closed:
            return
        self._wanted = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="durable-execution:notify ready"
            )

    async def _run(self) -> None:
        while self._wanted and not self._closed:
            wait_s = self._last_sent + self._interval_s - time.monotonic()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            # Cleared before sending: a commit from now on pokes again and gets a later notice.
            self._wanted = False
            self._last_sent = time.monotonic()
            try:
                await self._send()
                self.sent += 1
            except Exception as error:
                logger.debug("Could not send the ready notice (listeners will poll): %r", error)

    async def close(self) -> None:
        """Stop: a notice still waiting for its interval is dropped (the storage is closing)."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class ThreadedReadyNotices:
    """:class:`ReadyNotices` for a storage without an event loop (the ``SyncClient``'s): the same
    debounce, sent by one daemon thread, started at the first poke.

    :meth:`close` sends a notice still wanted instead of dropping it: a script that enqueues and
    exits at once would otherwise leave the work to the workers' idle poll.
    """

    def __init__(self, send: Callable[[], None], interval_s: float = NOTIFY_INTERVAL_S) -> None:
        self._send = send
        self._interval_s = interval_s
        self._changed = threading.Condition()
        self._wanted = False
        self._last_sent = float("-inf")
        self._thread: threading.Thread | None = None
        self._closed = False
        self.sent = 0  # notices sent (for tests and benchmarks)

    def poke(self) -> None:
        """A transaction that inserted work ready now committed: make sure a notice follows."""
        with self._changed:
            if self._closed:
                return
            self._wanted = True
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="durable-execution:notify ready", daemon=True
                )
                self._thread.start()
            self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._wanted and not self._closed:
                    self._changed.wait()
                if self._closed:
                    return
                wait_s = self._last_sent + self._interval_s - time.monotonic()
                if wait_s > 0:
                    self._changed.wait(wait_s)  # a close() wakes it early
                    continue
                # Cleared before sending: a commit from now on pokes again and gets a later notice.
                self._wanted = False
                self._last_sent = time.monotonic()
            self._send_logged()

    def _send_logged(self) -> None:
        try:
            self._send()
            self.sent += 1
        except Exception as error:
            logger.debug("Could not send the ready notice (listeners will poll): %r", error)

    def close(self) -> None:
        """Stop the thread, then send the notice it still owed, if any (idempotent)."""
        with self._changed:
            if self._closed:
                return
            self._closed = True
            owed, self._wanted = self._wanted, False
            thread = self._thread
            self._changed.notify_all()
        if thread is not None:
            thread.join()
        if owed:
            self._send_logged()
