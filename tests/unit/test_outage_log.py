"""The evidence the lease expirer weighs before counting an expiry against a task: whether this
executor itself could not reach its storage while the expired lease should have been renewed."""

from __future__ import annotations

from datetime import timedelta

from durable_execution._outage_log import OutageLog
from durable_execution.clock import now

STALL = timedelta(seconds=1)


def test_no_outage_means_the_expiry_counts() -> None:
    log = OutageLog(STALL)
    started = now()
    log.succeeded(started, started + timedelta(milliseconds=10))
    assert not log.overlaps(started - timedelta(seconds=30), started, current_started=now())


def test_a_failure_opens_an_outage_until_the_next_success() -> None:
    log = OutageLog(STALL)
    t0 = now() - timedelta(seconds=60)
    log.failed(t0)
    assert log.in_outage
    # Still open: any window since t0 overlaps it.
    assert log.overlaps(
        t0 + timedelta(seconds=50), t0 + timedelta(seconds=55), current_started=now()
    )
    log.succeeded(t0 + timedelta(seconds=20), t0 + timedelta(seconds=21))
    assert not log.in_outage
    assert log.overlaps(
        t0 + timedelta(seconds=10), t0 + timedelta(seconds=12), current_started=now()
    )
    # Before the outage and after it: no evidence, the expiry counts.
    assert not log.overlaps(
        t0 - timedelta(seconds=9), t0 - timedelta(seconds=1), current_started=now()
    )
    assert not log.overlaps(
        t0 + timedelta(seconds=30), t0 + timedelta(seconds=40), current_started=now()
    )


def test_a_stalled_transaction_is_an_outage_a_quick_one_is_not() -> None:
    log = OutageLog(STALL)
    t0 = now() - timedelta(seconds=60)
    log.succeeded(t0, t0 + timedelta(milliseconds=900))
    assert not log.overlaps(t0, t0 + timedelta(seconds=1), current_started=now())
    log.succeeded(t0 + timedelta(seconds=10), t0 + timedelta(seconds=15))
    assert log.overlaps(
        t0 + timedelta(seconds=12), t0 + timedelta(seconds=13), current_started=now()
    )
    # The asking transaction's own stall counts before it finishes.
    asking = now() - timedelta(seconds=5)
    assert log.overlaps(
        asking - timedelta(seconds=1), asking + timedelta(seconds=1), current_started=asking
    )
