"""Wake-ups of the claim loop: immediate for due work, by timer for future work."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from durable_execution import clock
from durable_execution.storage import InMemoryStorage

from ._support import make_runtime


async def test_due_work_wakes_at_once_even_with_future_work_alongside() -> None:
    runtime = make_runtime(InMemoryStorage())
    now = clock.now()
    runtime.wake_ready_at([now + timedelta(seconds=30), now - timedelta(milliseconds=1)])
    assert runtime.ready_wakeup.is_set()
    runtime.request_shutdown()  # cancels the pending timer


async def test_future_work_wakes_by_timer() -> None:
    runtime = make_runtime(InMemoryStorage())
    runtime.wake_ready_at([clock.now() + timedelta(milliseconds=50)])
    assert not runtime.ready_wakeup.is_set()
    await asyncio.wait_for(runtime.ready_wakeup.wait(), timeout=5)


async def test_shutdown_sets_the_wakeups_and_drops_timers() -> None:
    runtime = make_runtime(InMemoryStorage())
    runtime.wake_ready_at([clock.now() + timedelta(milliseconds=30)])
    runtime.request_shutdown()
    assert runtime.shutdown_requested
    assert runtime.ready_wakeup.is_set()
    assert runtime.close_wakeup.is_set()
    runtime.ready_wakeup.clear()
    await asyncio.sleep(0.1)
    assert not runtime.ready_wakeup.is_set()  # the cancelled timer did not fire


async def test_sleep_returns_early_on_its_wakeup() -> None:
    runtime = make_runtime(InMemoryStorage())
    loop = asyncio.get_running_loop()
    loop.call_later(0.02, runtime.close_wakeup.set)
    started = loop.time()
    await runtime.sleep(30, runtime.close_wakeup)
    assert loop.time() - started < 10
