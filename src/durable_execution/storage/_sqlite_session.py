"""The SQLite connection's life: opening it, and beginning, committing and rolling back.

These few statements are connection control, not queries: sqlc cannot compile them (``BEGIN
IMMEDIATE`` is "no queries contained in paths"), so they live here, apart from the storage, which
only runs generated queries. Everything here is blocking and runs on the storage's worker thread.

Lock discipline, so that several processes can share one file:

* WAL journal: readers never block the writer and the writer never blocks readers;
  ``synchronous=NORMAL`` is durable against application crashes under WAL (a power loss may
  drop the last commits, never corrupt the file);
* every transaction is ``BEGIN IMMEDIATE``: the write lock is taken up front, so two connections
  never both hold a read lock and then deadlock trying to upgrade it (the case in which SQLite
  returns ``SQLITE_BUSY`` at once, without waiting);
* the busy timeout makes SQLite itself wait for the lock; if ``SQLITE_BUSY`` still escapes (the
  lock was held longer, or a WAL recovery was in progress), the step is retried here a few times
  and then reported as :class:`SQLiteBusyError`, never as sqlite3's "database is locked".
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar

from durable_execution.storage.errors import StorageError

_T = TypeVar("_T")

# Extra attempts after SQLite's own busy wait gave up, with short jittered pauses between them.
BUSY_RETRIES: Final = 8
BUSY_RETRY_PAUSE_S: Final = 0.05

_BUSY_CODES: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


class SQLiteBusyError(StorageError):
    """Another connection kept the SQLite database locked for longer than we were willing to wait.

    Transient: the transaction did not happen and can be retried.
    """


def is_busy(error: sqlite3.Error) -> bool:
    # Extended result codes (SQLITE_BUSY_RECOVERY, …) carry the primary code in the low byte.
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _BUSY_CODES
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


def retry_busy(step: Callable[[], _T], what: str, busy_timeout_ms: int) -> _T:
    """Run ``step``; while SQLite reports the database busy, retry a few times, then give up."""
    for attempt in range(BUSY_RETRIES + 1):
        try:
            return step()
        except sqlite3.OperationalError as error:
            if not is_busy(error):
                raise
            if attempt == BUSY_RETRIES:
                raise SQLiteBusyError(
                    f"Could not {what}: another connection held the SQLite database locked for "
                    f"longer than the busy timeout ({busy_timeout_ms} ms) and {BUSY_RETRIES} "
                    "retries; try again, or raise busy_timeout_ms"
                ) from None
            time.sleep(BUSY_RETRY_PAUSE_S * (0.5 + random.random()))
    raise AssertionError("unreachable")  # the loop returns or raises


def connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    """Open ``path`` in autocommit mode (transactions are begun explicitly) with WAL enabled.

    The connection belongs to the calling thread (sqlite3's default same-thread check stays on):
    the storage creates and uses it only on its worker thread.
    """
    conn = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None)
    try:
        # journal_mode is stored in the file; switching needs a moment of exclusive access.
        retry_busy(lambda: conn.execute("PRAGMA journal_mode = WAL"), "enable WAL", busy_timeout_ms)
        conn.execute("PRAGMA synchronous = NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


def begin_immediate(conn: sqlite3.Connection, busy_timeout_ms: int) -> None:
    """Begin a transaction that holds the write lock from its first statement."""
    if conn.in_transaction:
        # Left open by an interrupted transaction whose ROLLBACK never ran: discard it.
        conn.execute("ROLLBACK")
    retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"), "begin a transaction", busy_timeout_ms)


def commit(conn: sqlite3.Connection, busy_timeout_ms: int) -> None:
    # A COMMIT that fails with SQLITE_BUSY leaves the transaction open, so retrying is safe.
    retry_busy(lambda: conn.execute("COMMIT"), "commit", busy_timeout_ms)


def rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")
