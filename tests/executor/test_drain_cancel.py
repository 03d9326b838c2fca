"""A cancel that arrives while shutdown drains the running attempts still stops the attempt.

Shutdown stops claiming and waits for the running attempts; a cancel written meanwhile by another
process (here ``cancel_execution`` on the storage, with no executor) must stop the attempt at its
next ``await``, as it does when the executor is not shutting down, instead of letting it run on.
"""

from __future__ import annotations

import asyncio
import time

from durable_execution import TaskContext, cancel_execution
from durable_execution.storage import DurableStorage

from ._support import MakeExecutor, eventually, wait_finished

NATURAL_RUN_S = 60.0


async def test_a_cancel_from_elsewhere_stops_an_attempt_while_shutdown_drains(
    storage: DurableStorage, make_executor: MakeExecutor
) -> None:
    executor = await make_executor()
    stopped = asyncio.Event()

    @executor.task(id="long", timeout_ms=120_000)
    async def long(ctx: TaskContext, _: None) -> str:
        try:
            await asyncio.sleep(NATURAL_RUN_S)
        except asyncio.CancelledError:
            stopped.set()
            raise
        return "ran to its end"

    handle = await executor.enqueue_task(long, None)
    await eventually(
        lambda: handle.execution_id in executor.get_running_task_execution_ids(),
        what="the attempt started",
    )
    draining = asyncio.create_task(executor.shutdown())
    await asyncio.sleep(0.3)  # well into the drain: the claim loops have stopped by now
    assert not draining.done()
    began = time.monotonic()
    assert await cancel_execution(storage, handle.execution_id) is True
    await asyncio.wait_for(draining, timeout=15)
    assert stopped.is_set()
    assert time.monotonic() - began < NATURAL_RUN_S / 2
    execution = await wait_finished(handle)
    assert execution.status == "cancelled", execution


async def test_shutdown_without_running_attempts_returns_promptly(
    make_executor: MakeExecutor,
) -> None:
    # The remote-cancel watcher outlives the drain only while attempts run: with none, shutdown
    # does not wait for its idle poll.
    executor = await make_executor(background_process_intra_batch_sleep_ms=60_000)
    await asyncio.sleep(0.1)
    await asyncio.wait_for(executor.shutdown(), timeout=10)
