"""The SQLite connection's life: opening it, and beginning, committing and rolling back.

These few statements are connection control, not queries: sqlc cannot compile them (``BEGIN
IMMEDIATE`` is "no queries contained in paths"), so they live here, apart from the storage, which
only runs generated queries. The functions here are blocking; the storage calls them on the
event-loop thread when they cannot wait (see :mod:`.sqlite`) and on its worker thread otherwise.

Lock discipline, so that several processes can share one file:

* WAL journal: readers never block the writer and the writer never blocks readers;
* ``synchronous=FULL`` by default: the WAL is synced at every commit, so a transaction that
  returned survives a power loss or an OS crash. ``NORMAL`` (an explicit opt-in, see
  :data:`SqliteSynchronous`) syncs only at checkpoints: still safe against application crashes
  and never corrupts the file, but a power loss or OS crash may drop the last commits — an
  enqueue or a result that had already returned;
* every transaction is ``BEGIN IMMEDIATE``: the write lock is taken up front, so two connections
  never both hold a read lock and then deadlock trying to upgrade it (the case in which SQLite
  returns ``SQLITE_BUSY`` at once, without waiting);
* SQLite itself never waits (its busy timeout is 0), so that a statement run on the event loop
  cannot block it: a busy answer there sends the statement to the worker thread, where
  :func:`retry_busy` waits for the lock (polling with SQLite's own backoff) for up to the busy
  timeout, retries a few more times, and then reports :class:`SQLiteBusyError`, never sqlite3's
  "database is locked".
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, Literal, TypeAlias, TypeVar, get_args

from durable_execution.storage.errors import SQLiteBusyError, SQLiteFullError

_T = TypeVar("_T")

SqliteSynchronous: TypeAlias = Literal["full", "normal"]
"""SQLite's ``PRAGMA synchronous`` for the storage's connection: ``"full"`` (the default) syncs
every commit to disk; ``"normal"`` is faster but a power loss or OS crash may lose the last
commits (never the application's own crash)."""
SYNCHRONOUS_VALUES: Final[tuple[SqliteSynchronous, ...]] = get_args(SqliteSynchronous)
DEFAULT_SYNCHRONOUS: Final[SqliteSynchronous] = "full"
# What ``PRAGMA synchronous`` reads back for each setting.
SYNCHRONOUS_LEVELS: Final[dict[SqliteSynchronous, int]] = {"full": 2, "normal": 1}
# Constant statements, one per setting: no SQL is ever built from what the caller passed.
_SYNCHRONOUS_PRAGMAS: Final[dict[SqliteSynchronous, str]] = {
    "full": "PRAGMA synchronous = FULL",
    "normal": "PRAGMA synchronous = NORMAL",
}


def check_synchronous(value: object, what: str = "synchronous") -> SqliteSynchronous:
    """``value`` as a :data:`SqliteSynchronous`, or ``ValueError`` naming it and the choices."""
    for choice in SYNCHRONOUS_VALUES:
        if value == choice:
            return choice
    choices = " or ".join(repr(choice) for choice in SYNCHRONOUS_VALUES)
    raise ValueError(f"{what} must be {choices}, got {value!r}")


# Pauses while waiting for a lock within the busy timeout: SQLite's own busy handler's, then
# its last one over and over (a released lock is noticed within that).
_BUSY_PAUSES_S: Final = (0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.025, 0.025, 0.025, 0.05, 0.05)
_LONGEST_BUSY_PAUSE_S: Final = 0.1
# Extra attempts once the busy timeout is over, with short jittered pauses between them.
BUSY_RETRIES: Final = 8
BUSY_RETRY_PAUSE_S: Final = 0.05

_BUSY_CODES: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def is_full(error: sqlite3.Error) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return bool((code & 0xFF) == sqlite3.SQLITE_FULL)
    return "is full" in str(error)


def full_error(path: Path, error: sqlite3.Error) -> SQLiteFullError:
    return SQLiteFullError(
        f"Cannot write the SQLite database {path}: disk or database full (SQLITE_FULL: {error});"
        " the transaction was rolled back and is retried; free disk space to let work go on"
    )


def is_busy(error: sqlite3.Error) -> bool:
    # Extended result codes (SQLITE_BUSY_RECOVERY, …) carry the primary code in the low byte.
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _BUSY_CODES
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


def retry_busy(step: Callable[[], _T], what: str, busy_timeout_ms: int) -> _T:
    """Run ``step``; while SQLite reports the database busy, wait and retry for up to
    ``busy_timeout_ms``, then a few more times, then give up. Blocking: for the worker thread."""
    deadline = time.monotonic() + busy_timeout_ms / 1000
    waits = 0
    retries = 0
    while True:
        try:
            return step()
        except sqlite3.OperationalError as error:
            if not is_busy(error):
                raise
        left_s = deadline - time.monotonic()
        if left_s > 0:
            pause = _BUSY_PAUSES_S[waits] if waits < len(_BUSY_PAUSES_S) else _LONGEST_BUSY_PAUSE_S
            waits += 1
            time.sleep(min(pause, left_s))
            continue
        if retries == BUSY_RETRIES:
            raise SQLiteBusyError(
                f"Could not {what}: another connection held the SQLite database locked for "
                f"longer than the busy timeout ({busy_timeout_ms} ms) and {BUSY_RETRIES} "
                "retries; try again, or raise busy_timeout_ms"
            )
        retries += 1
        time.sleep(BUSY_RETRY_PAUSE_S * (0.5 + random.random()))


def connect(
    path: Path, busy_timeout_ms: int, synchronous: SqliteSynchronous = DEFAULT_SYNCHRONOUS
) -> sqlite3.Connection:
    """Open ``path`` in autocommit mode (transactions are begun explicitly) with WAL enabled
    and ``PRAGMA synchronous`` set to ``synchronous`` (a per-connection setting, not stored).

    SQLite's busy timeout is 0 (see the module docstring; ``busy_timeout_ms`` bounds the
    waits of :func:`retry_busy` here). ``check_same_thread`` is off because the storage uses the
    connection on two threads, the event loop's and its worker's, though never on both at once:
    its transactions queue on one ``asyncio.Lock``, and the loop touches the connection only
    while no worker job is queued or running.
    """
    conn = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
    try:
        # journal_mode is stored in the file; switching needs a moment of exclusive access.
        retry_busy(lambda: conn.execute("PRAGMA journal_mode = WAL"), "enable WAL", busy_timeout_ms)
        pragma = _SYNCHRONOUS_PRAGMAS[check_synchronous(synchronous)]  # one of two constants
        conn.execute(pragma)
    except BaseException:
        conn.close()
        raise
    return conn


def in_wal_mode(conn: sqlite3.Connection) -> bool:
    """Whether WAL is really on: SQLite keeps another mode where WAL is impossible (``:memory:``,
    a VFS without shared memory), and without WAL a COMMIT may wait for readers."""
    row = conn.execute("PRAGMA journal_mode").fetchone()
    return row is not None and str(row[0]).lower() == "wal"


def _discard_interrupted(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        # Left open by an interrupted transaction whose ROLLBACK never ran: discard it.
        conn.execute("ROLLBACK")


def begin_immediate(conn: sqlite3.Connection, busy_timeout_ms: int) -> None:
    """Begin a transaction that holds the write lock from its first statement."""
    _discard_interrupted(conn)
    retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"), "begin a transaction", busy_timeout_ms)


def begin_immediate_once(conn: sqlite3.Connection) -> None:
    """One ``BEGIN IMMEDIATE`` attempt: raises the busy error instead of waiting, so that the
    caller can hand the wait to a thread that may block."""
    _discard_interrupted(conn)
    conn.execute("BEGIN IMMEDIATE")


def commit_once(conn: sqlite3.Connection) -> None:
    """One ``COMMIT`` attempt (see :func:`begin_immediate_once`); a busy one leaves the
    transaction open."""
    conn.execute("COMMIT")


def commit(conn: sqlite3.Connection, busy_timeout_ms: int) -> None:
    # A COMMIT that fails with SQLITE_BUSY leaves the transaction open, so retrying is safe.
    retry_busy(lambda: conn.execute("COMMIT"), "commit", busy_timeout_ms)


def rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")
