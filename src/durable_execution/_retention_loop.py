"""Automatic retention: an executor started with ``retention=`` prunes old trees now and then.

Every executor sharing a database runs this loop, but each prune batch first takes the storage's
pruning lock without waiting (:meth:`DurableStorageTx.try_lock_pruning`: an advisory lock on
PostgreSQL, the write lock on SQLite); an executor that finds it held stops its walk, since
another one is pruning. So executors prune one at a time and never race through the same rows.

When: the first run a little after start (so that a fleet restarting together does not prune
in step, and a worker's start is not slowed by it), then every ``retention / 10`` — a finished
tree then lives at most about 10 % longer than the bound — capped at one hour (a week's
retention need not wait 17 hours) and at least one second apart (only tests and benchmarks use
a retention that short; a run that finds nothing is one indexed query). Each wait is jittered.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from durable_execution import clock
from durable_execution._runtime import Runtime
from durable_execution._transactions import is_transient, jittered
from durable_execution.retention import prune_executions

_MIN_INTERVAL: Final = timedelta(seconds=1)
_MAX_INTERVAL: Final = timedelta(hours=1)
# The first run: after about this long (jittered), or one interval if that is shorter.
_FIRST_RUN_S: Final = 5.0
_ERROR_BACKOFF_S: Final = 30.0


def retention_interval(retention: timedelta) -> timedelta:
    """How long an executor waits between two prune runs (before jitter)."""
    return min(max(retention / 10, _MIN_INTERVAL), _MAX_INTERVAL)


async def run_retention_loop(runtime: Runtime, retention: timedelta) -> None:
    """Prune trees finished more than ``retention`` ago until shutdown is requested."""
    stop = runtime.shutdown_event
    logger = runtime.logger
    interval_s = retention_interval(retention).total_seconds()
    await runtime.sleep(jittered(min(_FIRST_RUN_S, interval_s)), stop)
    while not stop.is_set():
        wait_s = interval_s
        try:
            result = await prune_executions(
                runtime.transactions.storage,
                older_than=retention,
                now=clock.now(),
                logger=logger,
                exclusive=True,
            )
        except Exception as error:
            # Retention is housekeeping: it never stops the executor; the next run retries.
            logger.error("Error in automatic retention: %r", error, exc_info=error)
            if not is_transient(error):
                wait_s = max(wait_s, _ERROR_BACKOFF_S)
        else:
            if result.trees:
                counts = ", ".join(
                    f"{count} {status}"
                    for status, count in sorted(result.executions_by_status.items())
                )
                logger.info(
                    "Retention pruned %d trees finished over %s ago (%d executions: %s)",
                    result.trees,
                    retention,
                    result.executions,
                    counts,
                )
            elif result.locked_out:
                logger.debug("Retention: another executor is pruning; skipped this run")
        await runtime.sleep(jittered(wait_s), stop)
    logger.debug("Executor shut down: automatic retention stopped")
