"""The PostgreSQL connection pool, made to ride out dropped sessions and server restarts.

Two things hide a lost connection from the storage's callers:

* **A dead pooled connection is replaced at once.** The server may drop idle sessions at any time
  (a restart, a failover, ``pg_terminate_backend``, an idle reaper); the pool only finds out when
  the connection is next used. A transaction's first round trip is its ``BEGIN``, which changes
  nothing, so a connection that fails there is handed back (the pool discards it and connects a
  replacement) and the next one is tried, without a pause and without counting as a failed
  transaction. Read-only inspection queries are retried the same way. Checking every connection
  on checkout (psycopg_pool's ``check``) would cost a round trip per transaction, and its own
  backoff (1 s, 2 s, …) would make a pool of dead connections slower, not faster, to get through.
* **Reconnecting keeps trying quickly.** psycopg_pool retries a failed connection attempt after
  1 s, then 2 s, 4 s …, and gives up after ``reconnect_timeout``; a client already waiting for a
  connection then waits out its whole timeout, since nothing else starts a new attempt (an 8 s
  outage left every transaction stuck for 22 s). Here one attempt retries itself every
  ``RETRY_CAP_S`` at most while the server is unreachable, for up to ``RECONNECT_WINDOW_S``:
  a restarted server is found within a fraction of a second.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager, contextmanager
from typing import Any, Final, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from durable_execution.storage.errors import StorageError

logger = logging.getLogger("durable_execution.storage.postgres")

# Any: the pool's connections keep psycopg's default row factory; the generated queries open
# their own tuple cursors, so the row type never matters here.
Connection = psycopg.AsyncConnection[Any]
SyncConnection = psycopg.Connection[Any]  # the same, for the SyncClient's pool

_T = TypeVar("_T")

RETRY_FIRST_S: Final = 0.05
RETRY_CAP_S: Final = 0.25
# How long one connection attempt keeps retrying an unreachable server before the pool's own
# (slow) backoff takes over. Outages longer than twice this may again wait for a pool timeout.
RECONNECT_WINDOW_S: Final = 60.0

# SQLSTATE classes of connection failures that retrying quickly cannot fix: bad credentials
# (28), a missing database (3D). Anything else (refused, reset, "the database system is
# starting up") is the server being away for a moment.
_PERMANENT_SQLSTATE_CLASSES: Final = ("28", "3D")


def check_pool_sizes(pool_min_size: int, pool_max_size: int) -> None:
    """The pool sizes a storage (async or sync) accepts, refused with the bound they break."""
    if pool_min_size < 0:
        raise ValueError(f"pool_min_size must be >= 0, got {pool_min_size}")
    if pool_max_size < max(pool_min_size, 1):
        raise ValueError(
            f"pool_max_size must be >= max(pool_min_size, 1), got {pool_max_size} "
            f"(pool_min_size {pool_min_size})"
        )


def server_unavailable(error: psycopg.OperationalError) -> bool:
    sqlstate = error.sqlstate or ""
    return not sqlstate.startswith(_PERMANENT_SQLSTATE_CLASSES)


class ReconnectingPool(AsyncConnectionPool[Connection]):
    """An ``AsyncConnectionPool`` whose connection attempts retry quickly (see module doc)."""

    async def _connect(self, timeout: float | None = None) -> Connection:  # noqa: ASYNC109 (theirs)
        # Overrides psycopg_pool's private factory (same signature since 3.1): the one place
        # every new pooled connection comes from. tests/reliability/test_pg_reconnect.py fails
        # if a psycopg_pool upgrade stops calling it.
        deadline = time.monotonic() + self.reconnect_timeout
        delay = RETRY_FIRST_S
        while True:
            try:
                return await super()._connect(timeout)
            except psycopg.OperationalError as error:
                if (
                    self.closed
                    or not server_unavailable(error)
                    or time.monotonic() + delay > deadline
                ):
                    raise
                logger.debug("Connecting failed, retrying in %.2f s: %s", delay, error)
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, RETRY_CAP_S)


def _dead(conn: Connection | SyncConnection) -> bool:
    return conn.closed or conn.broken


@asynccontextmanager
async def begun(pool: AsyncConnectionPool[Connection], pool_size: int) -> AsyncIterator[Connection]:
    """A pooled connection inside a transaction (committed on a clean exit, else rolled back).

    A connection that fails at ``BEGIN`` is dead (nothing was done on it): it goes back to the
    pool, which replaces it, and the next one is tried. Every pooled connection may be dead, so
    up to ``pool_size`` of them are passed over before the failure counts.
    """
    for passed_over in range(pool_size + 1):
        async with AsyncExitStack() as stack:
            conn = await stack.enter_async_context(pool.connection())
            try:
                await stack.enter_async_context(conn.transaction())
            except psycopg.OperationalError as error:
                if passed_over == pool_size or not _dead(conn):
                    raise
                logger.debug("A pooled connection was dead (%s); trying another", error)
                continue
            yield conn
            return


@contextmanager
def begun_sync(pool: ConnectionPool[SyncConnection], pool_size: int) -> Iterator[SyncConnection]:
    """:func:`begun` for a synchronous pool (the ``SyncClient``'s): the same passing over of
    dead connections."""
    for passed_over in range(pool_size + 1):
        with ExitStack() as stack:
            conn = stack.enter_context(pool.connection())
            try:
                stack.enter_context(conn.transaction())
            except psycopg.OperationalError as error:
                if passed_over == pool_size or not _dead(conn):
                    raise
                logger.debug("A pooled connection was dead (%s); trying another", error)
                continue
            yield conn
            return


async def read_on_live_connection(
    pool: AsyncConnectionPool[Connection],
    pool_size: int,
    read: Callable[[Connection], Awaitable[_T]],
) -> _T:
    """``read(conn)`` on a pooled connection in autocommit; a read-only statement that failed
    because its connection was dead is run again on the next one (as for :func:`begun`)."""
    for passed_over in range(pool_size + 1):
        async with pool.connection() as conn:
            try:
                return await read(conn)
            except psycopg.OperationalError as error:
                if passed_over == pool_size or not _dead(conn):
                    raise
                logger.debug("A pooled connection was dead (%s); trying another", error)
    raise AssertionError("unreachable")  # the last pass returns or raises


class StatementBudget:
    """How many statements a transaction may still send: unbounded in a real transaction; one
    on a connection in autocommit outside any BEGIN, where each statement is its own transaction
    (a second one would commit apart from the first, so it is refused before it is sent)."""

    __slots__ = ("_left",)

    def __init__(self, single_statement: bool) -> None:
        self._left: int | None = 1 if single_statement else None

    def spend(self) -> None:
        if self._left is None:
            return
        if self._left == 0:
            raise StorageError("A single-statement transaction cannot run a second statement")
        self._left -= 1
