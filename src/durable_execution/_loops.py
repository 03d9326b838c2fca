"""The loop that drives each background job: run a batch, then wait for a reason to run again.

A batch that did work is followed at once by the next. An idle loop waits for its wake-up event
(set by local activity) or, failing that, a jittered ``background_process_intra_batch_sleep_ms``
so that work created by other processes is found too. Errors back off as in the reference
(1 s, capped at 5 s for retryable errors, doubling up to 30 s after 10 consecutive errors). Every
wait — idle or backoff — ends as soon as the loop's ``until`` event is set (shutdown being
requested, for most loops); a batch already under way is allowed to finish, so that whatever it
claimed is started and awaited by shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final

from durable_execution._runtime import Runtime
from durable_execution._transactions import is_transient, jittered

_INITIAL_BACKOFF_S: Final = 1.0
_RETRYABLE_BACKOFF_CAP_S: Final = 5.0
_MAX_BACKOFF_S: Final = 30.0
_ERRORS_BEFORE_BACKOFF_GROWS: Final = 10


async def run_loop(
    name: str,
    runtime: Runtime,
    batch: Callable[[], Awaitable[bool]],
    wakeup: asyncio.Event | None = None,
    until: asyncio.Event | None = None,
) -> None:
    """Run ``batch`` until ``until`` is set (by default: until shutdown is requested);
    ``wakeup`` (if any) ends an idle wait early.

    An idle wait watches ``wakeup`` when there is one, else ``until``: a loop with a wake-up must
    therefore stop at shutdown, which sets every wake-up event.
    """
    stop = runtime.shutdown_event if until is None else until
    logger = runtime.logger
    idle_s = runtime.config.intra_batch_sleep_ms / 1000
    consecutive_errors = 0
    backoff_s = _INITIAL_BACKOFF_S
    while not stop.is_set():
        # Cleared before the batch: a wake-up during the batch makes the next wait return at once.
        if wakeup is not None:
            wakeup.clear()
        try:
            did_work = await batch()
        except Exception as error:
            consecutive_errors += 1
            logger.error(
                "Error in %s (%d consecutive): %r", name, consecutive_errors, error, exc_info=error
            )
            wait_s = min(backoff_s, _RETRYABLE_BACKOFF_CAP_S) if is_transient(error) else backoff_s
            await runtime.sleep(jittered(wait_s), stop)
            if consecutive_errors >= _ERRORS_BEFORE_BACKOFF_GROWS:
                backoff_s = min(backoff_s * 2, _MAX_BACKOFF_S)
                consecutive_errors = 0
                logger.error(
                    "Too many consecutive errors in %s; backing off %.1f s", name, backoff_s
                )
            continue
        consecutive_errors = 0
        backoff_s = _INITIAL_BACKOFF_S
        if did_work:
            await asyncio.sleep(0)  # let the runs it started make progress
            continue
        await runtime.sleep(jittered(idle_s), wakeup or stop)
    logger.debug("Executor shut down: %s stopped", name)
