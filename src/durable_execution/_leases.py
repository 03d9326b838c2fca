"""Leases: renewed by the live executor, stopped before they run out, expired when it is gone.

A claim gives a running attempt a lease of ``expire_ms`` (``expires_at = now + expire_ms``),
whatever its ``timeout_ms``: the timeout is enforced by the executor running the attempt (see
``_runner``), and the lease only says "this executor is alive and still owns the row".

* :class:`LeaseKeeper` renews the leases of all this executor's running attempts in one batched
  statement every ``expire_ms / 3`` (``DurableStorageTx.renew_task_execution_leases``),
  guarded by each attempt's claimed version. A renewal does not bump the version: the result
  write of the attempt is guarded by the version its claim wrote, and a renewal must not make
  that write fail. A row that moved on (cancelled, finished, or expired and claimed by another
  executor) is not renewed, and its local attempt is stopped.
* If renewals keep failing (the storage is unreachable, the disk is full) until the lease is
  about to run out (``expire_ms / 6`` before ``expires_at``), the keeper stops the attempt
  itself, so that it never runs at the same time as the re-run another executor may start once
  the lease has passed. When the storage answers again it *releases* the row: back to ready,
  guarded by the version, without counting a lease expiry — the executor did not die. An attempt
  whose code has finished is not stopped: only its result write remains, and the version guard
  decides whether that lands.
* ``LeaseExpirer`` (``_lease_expiry``, a loop of its own) puts rows whose lease passed (their
  executor stopped renewing: it presumably died) back to ready, counting the expiry in the row.
  Rows this executor still holds are the keeper's, never expired there. An expiry is not counted
  when this executor itself could not reach the storage during the lease's last ``expire_ms``
  (``_outage_log``): the owner was then most likely cut off by the same outage rather than
  dead, and an outage must not fail harmless tasks through ``max_lease_expiries``.

So a crashed attempt is re-run about ``expire_ms`` after the crash; the cost is one UPDATE per
executor per ``expire_ms / 3``, whatever the number of attempts it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Final

from durable_execution import clock
from durable_execution._lease_expiry import LeaseExpirer
from durable_execution._local_runs import LocalRun
from durable_execution._outage_log import OutageLog
from durable_execution._records import TASK_EXPIRED_ERROR
from durable_execution._runtime import Runtime
from durable_execution.storage.types import (
    DurableStorageTx,
    HeldLease,
    TaskExecutionUpdate,
    WhereByExecutionIds,
)

# The lease of a running attempt, renewed every third of it by its executor. 30 s: a crashed
# attempt is re-run about 30 s after the crash (the old default of 5 min plus the task's timeout
# made a crashed 1-hour task wait over an hour); renewing costs one UPDATE per executor every
# 10 s, whatever it runs; and an executor rides out a storage outage, failover or GC pause of
# 15-25 s (two missed renewals) before it stops its attempts rather than risk running them twice.
DEFAULT_EXPIRE_MS: Final = 30_000
# With renewed leases an expiry means its executor really stopped renewing (outages are not
# counted: see LeaseExpirer), but an executor that dies takes all its attempts with it, and a
# storm of kills (a crash-looping deployment, an OOM killer) can catch a harmless long task in
# several deaths in a row: 3 failed such tasks for good in an adversarial run of 17 kills. 5
# still stops a task that kills its process every time after five crashes (five times about
# expire_ms, and the collateral re-runs of each death), rather than forever.
DEFAULT_MAX_LEASE_EXPIRIES: Final = 5
# Renewals per lease: two can fail (a short outage, a long GC pause) before the attempt stops.
# More often when a lease is already a third used up (a claim that waited long for the lock).
RENEWALS_PER_LEASE: Final = 3
# The attempt stops this fraction of the lease before it runs out: time for the cancellation to
# take effect before another executor may see the lease as expired.
_STOP_MARGIN_FRACTION: Final = 1 / 6


def renew_interval_s(expire_ms: int) -> float:
    return expire_ms / RENEWALS_PER_LEASE / 1000


class LeaseKeeper:
    """Renews this executor's leases, stops attempts whose lease it cannot renew in time, and
    releases their rows once the storage answers again. Runs until :meth:`stop`: through a
    graceful shutdown too, as long as attempts are still running."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime
        self._outages = outages = OutageLog(
            timedelta(seconds=renew_interval_s(runtime.config.expire_ms))
        )
        self.expirer = LeaseExpirer(runtime, self.holds, outages)
        self._lease = timedelta(milliseconds=runtime.config.expire_ms)
        self._interval_s = renew_interval_s(runtime.config.expire_ms)
        self._stop_margin = self._lease * _STOP_MARGIN_FRACTION
        # Attempts stopped here whose rows are still running at their version: id -> version.
        self._releases: dict[str, int] = {}
        self._stopping = asyncio.Event()
        self._renew_due = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._failing_since: datetime | None = None

    def holds(self, execution_id: str, version: int) -> bool:
        """Whether the row at ``version`` is this executor's to renew or release."""
        local = self._rt.running.get(execution_id)
        if local is not None and local.claimed_version == version:
            return True
        return self._releases.get(execution_id) == version

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._renew_loop(), name="durable-execution:renew leases"),
            asyncio.create_task(self._watch_loop(), name="durable-execution:lease watchdog"),
        ]

    async def stop(self) -> None:
        """Stop both loops (once no attempt runs any more), then try the pending releases once."""
        self._stopping.set()
        self._renew_due.set()  # ends the renewal loop's wait
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._releases:
            try:
                await self.renew_once()
            except Exception as error:
                self._rt.logger.warning(
                    "Could not release executions %s at shutdown (%r); their leases expire",
                    ", ".join(self._releases),
                    error,
                )

    # -- renewal ---------------------------------------------------------------------------

    async def _renew_loop(self) -> None:
        """Renew every interval, or sooner when the watchdog finds a lease a third used up (an
        attempt whose claim waited long for the database starts with part of its lease gone);
        never more often than a quarter interval, so failing renewals do not spin."""
        rt = self._rt
        while not self._stopping.is_set():
            self._renew_due.clear()
            # Failures are logged by renew_once; the watchdog stops what cannot be renewed.
            with contextlib.suppress(Exception):
                await self.renew_once()
            await rt.sleep(self._interval_s / 4, self._stopping)
            await rt.sleep(self._interval_s * 3 / 4, self._renew_due)

    async def renew_once(self) -> None:
        """One round: release what was stopped, renew what runs (one transaction)."""
        rt = self._rt
        if not rt.running and not self._releases:
            return
        started = clock.now()
        releases: dict[str, int] = {}
        live: dict[str, LocalRun] = {}
        renewed_until = started

        async def renew(tx: DurableStorageTx) -> tuple[list[str], list[str]]:
            nonlocal renewed_until
            releases.clear()
            releases.update(self._releases)
            live.clear()
            live.update(
                (execution_id, local)
                for execution_id, local in rt.running.items()
                if not local.cancel_requested and execution_id not in releases
            )
            now = clock.now()
            released_counts = await tx.update_task_executions_each(
                [
                    (
                        WhereByExecutionIds([execution_id], statuses=["running"], version=version),
                        _release(version, now),
                    )
                    for execution_id, version in releases.items()
                ],
            )
            released = [
                execution_id for execution_id, n in zip(releases, released_counts, strict=True) if n
            ]
            renewed_until = now + self._lease
            held = [HeldLease(run_id, local.claimed_version) for run_id, local in live.items()]
            renewed = (
                await tx.renew_task_execution_leases(held, expires_at=renewed_until) if held else []
            )
            return released, renewed

        try:
            released, renewed = await rt.transactions.run(renew)
        except Exception as error:
            self._outages.failed(started)
            if self._failing_since is None:
                self._failing_since = started
                rt.logger.warning(
                    "Could not renew the leases of %d running executions (%r); each is stopped"
                    " if its lease cannot be renewed before it runs out",
                    len(rt.running),
                    error,
                )
            raise
        self._outages.succeeded(started, clock.now())
        if self._failing_since is not None:
            rt.logger.warning(
                "Leases renewed again after failing since %s", self._failing_since.isoformat()
            )
            self._failing_since = None
        for execution_id, version in releases.items():
            if self._releases.get(execution_id) == version:
                del self._releases[execution_id]
        if released:
            rt.logger.warning(
                "Executions stopped while their leases could not be renewed are ready again"
                " (not counted as lease expiries): %s",
                ", ".join(released),
            )
            rt.ready_wakeup.set()
        renewed_ids = set(renewed)
        for execution_id, local in live.items():
            if execution_id in renewed_ids:
                local.lease_expires_at = renewed_until
            elif not local.storing_result and not local.cancel_requested:
                # Cancelled elsewhere, or expired and claimed again: the attempt is no longer
                # the row's. (A finished attempt whose result just landed is not stopped.)
                rt.logger.warning(
                    "Execution %s is no longer this attempt's (cancelled, or its lease expired);"
                    " stopping it",
                    execution_id,
                )
                local.request_cancel()

    # -- the watchdog ------------------------------------------------------------------------

    async def _watch_loop(self) -> None:
        # A pass over the running attempts every thirtieth of a lease: cheap (a dict scan), and
        # it sees newly claimed attempts without being told of them.
        tick_s = max(0.01, self._interval_s / 10)
        while not self._stopping.is_set():
            self.stop_runs_out_of_lease()
            await self._rt.sleep(tick_s, self._stopping)

    def stop_runs_out_of_lease(self) -> None:
        """Stop every attempt whose lease runs out before it could be renewed; ask for a renewal
        now if some lease is already a third used up."""
        now = clock.now()
        # Attempts due a moment later are stopped now too: one log line for those of a batch.
        horizon = now + timedelta(seconds=self._interval_s / 10)
        renew_before = now + self._lease - timedelta(seconds=self._interval_s)
        stopped: list[str] = []
        for execution_id, local in list(self._rt.running.items()):
            if local.lease_expires_at is None or local.cancel_requested:
                continue
            if local.lease_expires_at <= renew_before:
                self._renew_due.set()
            if local.storing_result or local.lease_expires_at - self._stop_margin > horizon:
                continue
            self._releases[execution_id] = local.claimed_version
            local.request_cancel()
            stopped.append(execution_id)
        if stopped:
            self._outages.failed(now)
            self._rt.logger.error(
                "Leases about to run out could not be renewed (storage unreachable since %s):"
                " attempts stopped, to be made ready again once the storage answers: %s",
                (self._failing_since or now).isoformat(),
                ", ".join(stopped),
            )


def _release(version: int, now: datetime) -> TaskExecutionUpdate:
    """A stopped attempt's row back to ready, as an expiry would, but not counted as one."""
    return TaskExecutionUpdate(
        updated_at=now,
        status="ready",
        error=TASK_EXPIRED_ERROR,
        start_at=now,
        unset_expires_at=True,
        version=version + 1,
    )
