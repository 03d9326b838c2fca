"""Cross-process wake-ups on PostgreSQL: one LISTEN session per watch.

A transaction that inserts executions ready to run now sends ``pg_notify`` on the table's
channel (the generated ``NotifyReady`` query); PostgreSQL delivers it at commit to every session
listening on that channel, in any process. :func:`watch_ready` is such a session.

The channel is per *table name*, not per schema: two schemas with tables of the same name in one
database share it, so their executors may wake each other. That is harmless (a woken executor
only looks for work and finds none); telling them apart would cost a catalog lookup on every
notify. Channels are per database, so other databases never interfere.

The listening connection is opened apart from the pool: a session that LISTENs keeps receiving
notices for as long as it lives, so it must never be handed to a transaction, and a pool may
recycle a connection at any time.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, Final

import psycopg
from psycopg import sql

from durable_execution.storage.masking import scrub

logger = logging.getLogger("durable_execution.storage.postgres")

# Any: the listener never fetches rows through a cursor of its own, so the row type is moot.
_Connection = psycopg.AsyncConnection[Any]

CHANNEL_SUFFIX: Final = "_ready"
# Reconnection waits: doubling from the first, at most the cap, each with random jitter so that
# many executors do not reconnect in lockstep after a server restart. The cap is what a listener
# may lag behind a restarted server: a second (an attempt that fails costs the server little),
# not the 10 s it once was, which kept wake-ups off for up to 10 s after the server was back.
BACKOFF_FIRST_S: Final = 0.25
BACKOFF_CAP_S: Final = 1.0
# A connection that stayed up this long was healthy: its loss starts the backoff afresh. One
# killed at once again keeps it at the cap, so a server that refuses sessions is not hammered.
HEALTHY_AFTER_S: Final = 10.0
# A silently dead connection (a network partition) raises nothing while it waits for notices;
# a query every HEARTBEAT_S, answered within HEARTBEAT_TIMEOUT_S, finds it out.
HEARTBEAT_S: Final = 30.0
HEARTBEAT_TIMEOUT_S: Final = 10.0


def ready_channel(table_name: str) -> str:
    """The notification channel of a (validated) table name.

    Lower-cased because the generated SQL uses the table name unquoted, so PostgreSQL folds it:
    ``MyTable`` and ``mytable`` are the same table and must share one channel. A table name is
    at most 32 characters, so the channel fits the 63-byte identifier limit.
    """
    return table_name.lower() + CHANNEL_SUFFIX


@dataclass
class _Backoff:
    delay_s: float = 0.0

    def next_delay(self) -> float:
        self.delay_s = min(BACKOFF_CAP_S, max(BACKOFF_FIRST_S, self.delay_s * 2))
        return self.delay_s * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.delay_s = 0.0


class _ReadyWatch:
    """The background task of one :func:`watch_ready` context."""

    def __init__(
        self,
        conninfo: str,
        channel: str,
        on_ready: Callable[[], None],
        *,
        display: str,
        connect_timeout_s: float,
    ) -> None:
        self._conninfo = conninfo
        self._channel = channel
        self._on_ready = on_ready
        self._display = display
        self._connect_timeout = max(1, round(connect_timeout_s))
        self._first_attempt_done = asyncio.Event()
        self._conn: _Connection | None = None

    async def run(self) -> None:
        backoff = _Backoff()
        # Set while nobody listens: notices sent meanwhile are lost, so listening again must
        # call on_ready itself; also keeps repeated failures of one outage out of the warnings.
        failing = False
        while True:
            try:
                conn = await self._listen()
            except (psycopg.Error, OSError) as error:
                await self.close()  # connected, but LISTEN failed
                self._first_attempt_done.set()
                await self._wait_to_retry(backoff, f"cannot listen: {error}", quiet=failing)
                failing = True
                continue
            self._first_attempt_done.set()
            if failing:
                logger.info("Ready watch on %s listens again", self._display)
                self._notify()
                failing = False
            listening_since = time.monotonic()
            try:
                await self._forward_notices(conn)
            except (psycopg.Error, OSError, TimeoutError) as error:
                failing = True
                if time.monotonic() - listening_since >= HEALTHY_AFTER_S:
                    backoff.reset()
                await self.close()
                await self._wait_to_retry(backoff, f"lost its connection: {error}", quiet=False)
            finally:
                await self.close()

    async def wait_for_first_attempt(self) -> None:
        await self._first_attempt_done.wait()

    async def _listen(self) -> _Connection:
        conn = await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, connect_timeout=self._connect_timeout
        )
        self._conn = conn
        # Quoted: the channel is matched case-sensitively, exactly as pg_notify spells it.
        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
        return conn

    async def _forward_notices(self, conn: _Connection) -> None:
        """Call on_ready for each notice; returns only by raising when the connection fails."""
        while True:
            async for _notice in conn.notifies(timeout=HEARTBEAT_S):
                self._notify()
            async with asyncio.timeout(HEARTBEAT_TIMEOUT_S):
                await conn.execute("SELECT 1")

    def _notify(self) -> None:
        try:
            self._on_ready()
        except Exception:
            # The callback's failure is not the connection's: keep listening.
            logger.exception("The ready watch's callback failed")

    async def _wait_to_retry(self, backoff: _Backoff, reason: str, *, quiet: bool) -> None:
        delay = backoff.next_delay()
        reason = scrub(reason, self._conninfo)
        # Once per outage at warning level, not once per attempt. The display form of the URL
        # never carries the password.
        logger.log(
            logging.DEBUG if quiet else logging.WARNING,
            "Ready watch on %s (channel %s) %s; retrying in %.1f s",
            self._display,
            self._channel,
            reason,
            delay,
        )
        await asyncio.sleep(delay)

    async def close(self) -> None:
        """Close the listening connection, if any; never raises."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            await conn.close()
        except Exception as error:  # cleanup must not raise; the session is gone either way
            logger.debug("Closing the listening connection failed: %s", error)


@asynccontextmanager
async def watch_ready(
    conninfo: str,
    channel: str,
    on_ready: Callable[[], None],
    *,
    display: str,
    connect_timeout_s: float,
) -> AsyncIterator[_ReadyWatch]:
    """Call ``on_ready`` for each notice on ``channel`` while the context is open.

    Entering returns once the session listens, or once its first attempt failed (then it keeps
    retrying in the background and calls ``on_ready`` when it listens again). Exiting stops the
    task and closes the connection, and never raises.
    """
    watch = _ReadyWatch(
        conninfo, channel, on_ready, display=display, connect_timeout_s=connect_timeout_s
    )
    task = asyncio.create_task(watch.run(), name=f"durable-execution:listen {channel}")
    try:
        await _first_attempt(watch, task)
        yield watch
    finally:
        await _stop(watch, task)


async def _first_attempt(watch: _ReadyWatch, task: asyncio.Task[None]) -> None:
    first = asyncio.ensure_future(watch.wait_for_first_attempt())
    try:
        await asyncio.wait({first, task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        first.cancel()
        with suppress(asyncio.CancelledError):
            await first


async def _stop(watch: _ReadyWatch, task: asyncio.Task[None]) -> None:
    task.cancel()
    try:
        await asyncio.wait({task})
    finally:
        # Also when the task was cancelled in the middle of connecting or of LISTEN.
        await watch.close()
    if not task.cancelled() and task.exception() is not None:
        # The task ends only by cancellation: anything else is a bug, reported, never raised.
        logger.error("The ready watch failed", exc_info=task.exception())
