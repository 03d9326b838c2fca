"""The PostgreSQL storage's debounced ready notices (``_pg_notices.ReadyNotices``), alone.

``send`` is a fake here (the real one runs ``pg_notify``; tests/storage/test_pg_listen.py covers
it against the server): these tests pin the debounce rules — a lone poke is sent at once, a
burst folds into few sends at most one per interval, and every poke is followed by a send that
started after it (no lost wake-up).
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from durable_execution.storage._pg_notices import ReadyNotices

INTERVAL_S = 0.05


class FakeSend:
    def __init__(self, fail: int = 0) -> None:
        self.started: list[float] = []
        self._fail = fail

    async def __call__(self) -> None:
        self.started.append(time.monotonic())
        await asyncio.sleep(0.001)  # a round trip: pokes may arrive while a send runs
        if self._fail:
            self._fail -= 1
            raise OSError("server restarting")


async def settle(notices: ReadyNotices) -> None:
    """Wait until the notices have nothing left to send."""
    task = notices._task
    if task is not None:
        await asyncio.wait_for(asyncio.shield(task), timeout=10)


async def test_a_lone_poke_is_sent_at_once() -> None:
    send = FakeSend()
    notices = ReadyNotices(send, interval_s=3600)
    poked = time.monotonic()
    notices.poke()
    await settle(notices)
    assert len(send.started) == 1
    assert send.started[0] - poked < 1.0  # not after the (hour-long) interval


async def test_a_burst_folds_into_one_send_and_one_after_it() -> None:
    send = FakeSend()
    notices = ReadyNotices(send, interval_s=INTERVAL_S)
    for _ in range(100):
        notices.poke()  # all before the sender runs: one send covers them
    await asyncio.sleep(0)
    for _ in range(100):
        notices.poke()  # while the first is in flight: one more, an interval later
        await asyncio.sleep(0)
    await settle(notices)
    assert len(send.started) == 2
    assert send.started[1] - send.started[0] >= INTERVAL_S * 0.99
    assert notices.sent == 2


async def test_every_poke_is_followed_by_a_send_that_started_after_it() -> None:
    send = FakeSend()
    notices = ReadyNotices(send, interval_s=INTERVAL_S)
    pokes: list[float] = []
    for _ in range(40):
        pokes.append(time.monotonic())
        notices.poke()
        await asyncio.sleep(0.004)
    await settle(notices)
    assert all(any(started >= poked for started in send.started) for poked in pokes)
    gaps = [b - a for a, b in zip(send.started, send.started[1:], strict=False)]
    assert all(gap >= INTERVAL_S * 0.99 for gap in gaps)  # at most one send per interval
    assert len(send.started) < len(pokes)


async def test_a_failed_send_is_logged_and_the_next_poke_sends_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="durable_execution.storage.postgres")
    send = FakeSend(fail=1)
    notices = ReadyNotices(send, interval_s=0.001)
    notices.poke()
    await settle(notices)
    assert "Could not send the ready notice" in caplog.text
    notices.poke()
    await settle(notices)
    assert len(send.started) == 2
    assert notices.sent == 1


async def test_close_drops_a_pending_send_and_ignores_later_pokes() -> None:
    send = FakeSend()
    notices = ReadyNotices(send, interval_s=3600)
    notices.poke()
    await settle(notices)
    notices.poke()  # waits an hour for its interval
    await asyncio.sleep(0.01)
    await notices.close()
    notices.poke()
    await asyncio.sleep(0.01)
    assert len(send.started) == 1
