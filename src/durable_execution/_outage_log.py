"""When this executor could not reach its storage: what the lease expirer weighs before counting
an expiry (see ``_lease_expiry``), and what the lease keeper records."""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from typing import Final

from durable_execution import clock

# Outage intervals remembered for the expirer's decision (older ones cannot matter any more).
# A transaction stalled for a renewal interval counts as an outage.
_OUTAGES_KEPT: Final = 64


class OutageLog:
    """When this executor could not reach its storage: failed or stalled transactions.

    An interval opens at the start of a transaction that failed and closes when the next one
    succeeds; a transaction that succeeded but took longer than ``stall`` (waiting for a lock,
    for a connection) is an interval too. Shorter stalls cannot have cost anyone a lease.
    """

    def __init__(self, stall: timedelta) -> None:
        self._stall = stall
        self._closed: deque[tuple[datetime, datetime]] = deque(maxlen=_OUTAGES_KEPT)
        self._open_since: datetime | None = None

    @property
    def in_outage(self) -> bool:
        return self._open_since is not None

    def failed(self, started: datetime) -> None:
        if self._open_since is None:
            self._open_since = started

    def succeeded(self, started: datetime, finished: datetime) -> None:
        if self._open_since is not None:
            self._closed.append((self._open_since, finished))
            self._open_since = None
        elif finished - started > self._stall:
            self._closed.append((started, finished))

    def overlaps(self, start: datetime, end: datetime, *, current_started: datetime) -> bool:
        """Whether an outage overlapped ``[start, end]``; ``current_started`` is when the
        transaction asking began (its own stall counts, though it has not finished yet)."""
        now = clock.now()
        intervals: list[tuple[datetime, datetime]] = list(self._closed)
        if self._open_since is not None:
            intervals.append((self._open_since, now))
        if now - current_started > self._stall:
            intervals.append((current_started, now))
        return any(begin < end and finish > start for begin, finish in intervals)
