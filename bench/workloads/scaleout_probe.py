"""What W6 reports besides its throughput: why more processes stop helping.

Two views of one run. From our side, each worker counts its claims and how many rows each took
(:class:`ClaimCounter`): a batch that shrinks as processes grow means the workers split a queue
head that no longer fills their batches. From PostgreSQL's side, the coordinator samples
``pg_stat_activity`` and ``pg_locks`` for the run's database while it drains
(:class:`WaitSampler`): what the backends wait on (``Lock:transactionid`` for row-lock
contention on the queue head, ``LWLock:WALWrite``/``IO:WALSync`` for commit flushes,
``Lock:object`` for the NOTIFY queue's commit lock, ``Client:ClientRead`` for idle time on our
side) and how many lock requests are not granted.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Final, LiteralString

import psycopg
from psycopg.rows import TupleRow

from bench.cases import JsonValue
from durable_execution import DurableStorage
from durable_execution.storage import DurableStorageTx
from durable_execution.storage.types import ClaimedTaskExecutions, SingleStatementStorage

SAMPLE_INTERVAL_S: Final = 0.01
TOP_WAIT_EVENTS: Final = 8


class ClaimCounter:
    """Counts the claims made through the storages it wraps and the rows each one took."""

    def __init__(self) -> None:
        self.claims = 0
        self.claimed_rows = 0
        self.full_batches = 0  # claims that returned as many rows as they asked for
        self.empty = 0

    def wrap(self, storage: DurableStorage) -> DurableStorage:
        if isinstance(storage, SingleStatementStorage):
            return _CountingSingleStatementStorage(storage, self)
        return _CountingStorage(storage, self)

    def count(self, limit: int, taken: int) -> None:
        self.claims += 1
        self.claimed_rows += taken
        self.full_batches += taken >= limit
        self.empty += taken == 0

    def report(self) -> dict[str, float | int]:
        nonempty = self.claims - self.empty
        return {
            "claims": self.claims,
            "empty_claims": self.empty,
            "full_claims": self.full_batches,
            "mean_rows_per_nonempty_claim": (
                round(self.claimed_rows / nonempty, 2) if nonempty else 0.0
            ),
        }


class _CountingTx:
    """A transaction whose claims are counted; everything else goes straight through."""

    def __init__(self, tx: DurableStorageTx, counter: ClaimCounter) -> None:
        self._tx = tx
        self._counter = counter

    async def claim_ready_task_executions(
        self, *, now: datetime, limit: int, lease_ms: int, queues: Sequence[str] | None = None
    ) -> ClaimedTaskExecutions:
        # The contract's signature, spelt out: DurableStorageTx.claim_ready_task_executions.
        result = await self._tx.claim_ready_task_executions(
            now=now, limit=limit, lease_ms=lease_ms, queues=queues
        )
        self._counter.count(limit, len(result.records) + len(result.malformed))
        return result

    def __getattr__(self, name: str) -> object:
        return getattr(self._tx, name)


class _CountingStorage:
    """The wrapped storage, with counted transactions.

    Attribute access falls through to the wrapped storage, so the executor still finds
    ``watch_ready`` (LISTEN on PostgreSQL) exactly when the real storage has it.
    """

    def __init__(self, storage: DurableStorage, counter: ClaimCounter) -> None:
        self._storage = storage
        self._counter = counter

    def transaction(self) -> AbstractAsyncContextManager[DurableStorageTx]:
        return self._counted(self._storage.transaction())

    @asynccontextmanager
    async def _counted(
        self, inner: AbstractAsyncContextManager[DurableStorageTx]
    ) -> AsyncIterator[DurableStorageTx]:
        async with inner as tx:
            # The proxy has the contract's methods through __getattr__; mypy cannot see that.
            yield _CountingTx(tx, self._counter)  # type: ignore[misc]

    def __getattr__(self, name: str) -> object:
        return getattr(self._storage, name)


class _CountingSingleStatementStorage(_CountingStorage):
    """For a storage with one-statement transactions (PostgreSQL), which the executor claims
    in: counted as well, instead of reaching the wrapped storage's through ``__getattr__``."""

    def single_statement(self) -> AbstractAsyncContextManager[DurableStorageTx]:
        assert isinstance(self._storage, SingleStatementStorage)
        return self._counted(self._storage.single_statement())


# One sample: every other backend of the run's database, what it is doing and waiting on, and
# how many of its lock requests wait. The coordinator's own session is left out.
_SAMPLE_SQL: Final[LiteralString] = """
SELECT
    a.state,
    coalesce(a.wait_event_type || ':' || a.wait_event, 'CPU') AS wait,
    (SELECT count(*) FROM pg_locks AS l WHERE l.pid = a.pid AND NOT l.granted) AS waiting_locks
FROM pg_stat_activity AS a
WHERE a.datname = current_database()
    AND a.pid <> pg_backend_pid()
    AND a.backend_type = 'client backend'
"""


class WaitSampler:
    """Samples PostgreSQL's wait events on a thread of its own until stopped.

    ``active`` counts samples of backends running a statement, by wait event ('CPU' when none):
    the share of each event among them is how the server spends its time for us. Idle backends
    (between our statements, in our Python) are counted apart.
    """

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)
        self.samples = 0
        self.active: Counter[str] = Counter()
        self.idle: Counter[str] = Counter()
        self.lock_waits = 0
        self.error: str | None = None

    def __enter__(self) -> WaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample_until_stopped(self) -> None:
        try:
            with psycopg.connect(self._conninfo, autocommit=True) as connection:
                while not self._stop.wait(SAMPLE_INTERVAL_S):
                    self._take(connection.execute(_SAMPLE_SQL).fetchall())
        except psycopg.Error as error:  # a report without wait events beats a failed run
            self.error = f"{type(error).__name__}: {error}"

    def _take(self, rows: Sequence[TupleRow]) -> None:
        self.samples += 1
        for state, wait, waiting_locks in rows:
            (self.active if state == "active" else self.idle)[f"{state}/{wait}"] += 1
            self.lock_waits += int(waiting_locks)

    def report(self) -> dict[str, JsonValue]:
        total_active = sum(self.active.values())
        return {
            "samples": self.samples,
            "active_backend_samples": total_active,
            "idle_backend_samples": sum(self.idle.values()),
            "ungranted_lock_samples": self.lock_waits,
            "active_wait_share": {
                event: round(count / total_active, 3)
                for event, count in self.active.most_common(TOP_WAIT_EVENTS)
            },
            "error": self.error,
        }


def summarise_claims(reports: Sequence[Mapping[str, float | int]]) -> str:
    """One line for the console: each process's claims and mean rows per non-empty claim."""
    return "; ".join(
        f"p{index}: {report['claims']} claims, {report['mean_rows_per_nonempty_claim']} rows each"
        for index, report in enumerate(reports)
    )


def summarise_waits(report: Mapping[str, JsonValue]) -> str:
    shares = report.get("active_wait_share")
    if not isinstance(shares, Mapping) or not shares:
        return "no active backend sampled"
    return ", ".join(
        f"{event} {share:.0%}" for event, share in shares.items() if isinstance(share, float)
    )
