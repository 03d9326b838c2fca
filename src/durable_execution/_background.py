"""The background loops of one started executor, and the order in which shutdown stops them.

Four loops: claiming ready executions, closing finished ones, recovering expired leases, and
stopping local runs that another process cancelled (and, with ``retention``, one that prunes
old trees, and, with schedules, one that fires their ticks, stopped with the first three; the
schedules are stored before any loop starts); beside them the lease keeper renews this executor's
leases (``_leases``). Shutdown drains: the claiming loops stop at once (nothing new is claimed),
the running attempts are awaited, and only then do the remote-cancel watcher and the lease keeper
stop — they serve the running attempts, so a cancel written by another process while the
executor drains still stops its attempt at the next ``await``, and a long attempt keeps its lease
until it ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

from durable_execution._cancellation import RemoteCancellationWatcher
from durable_execution._claims import ReadyClaimer
from durable_execution._closing import Closer
from durable_execution._leases import LeaseKeeper
from durable_execution._loops import run_loop
from durable_execution._retention_loop import run_retention_loop
from durable_execution._runner import Runner
from durable_execution._runtime import Runtime
from durable_execution._schedule_loop import run_schedule_loop
from durable_execution._scheduling import register_schedules
from durable_execution.storage.types import ReadyWatchingStorage


class BackgroundLoops:
    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime
        self._watches = AsyncExitStack()  # the storage's ready watch, while started
        self._claiming: list[asyncio.Task[None]] = []  # stopped when shutdown starts
        self._serving_runs: list[asyncio.Task[None]] = []  # stopped once no attempt runs here
        self._keeper: LeaseKeeper | None = None  # renews the leases, while started

    @property
    def started(self) -> bool:
        return bool(self._claiming)

    async def start(self) -> None:
        rt = self._rt
        await register_schedules(rt)  # first: a bad schedule input fails start, nothing started
        runner = Runner(rt)
        keeper = self._keeper = LeaseKeeper(rt)
        storage = rt.transactions.storage
        if isinstance(storage, ReadyWatchingStorage):
            # Work other processes make ready wakes the claim loop at once, not at its next poll.
            await self._watches.enter_async_context(storage.watch_ready(rt.ready_wakeup.set))
        claiming: list[tuple[str, Callable[[], Awaitable[bool]], asyncio.Event | None]] = [
            ("process ready executions", ReadyClaimer(rt, runner).batch, rt.ready_wakeup),
            ("close finished executions", Closer(rt).batch, rt.close_wakeup),
            ("expire leases", keeper.expirer.batch, None),
        ]
        self._claiming = [_loop(rt, name, batch, wakeup) for name, batch, wakeup in claiming]
        if rt.config.retention is not None:
            self._claiming.append(
                asyncio.create_task(
                    run_retention_loop(rt, rt.config.retention),
                    name="durable-execution:automatic retention",
                )
            )
        if rt.schedules:
            self._claiming.append(
                asyncio.create_task(run_schedule_loop(rt), name="durable-execution:schedules")
            )
        watcher = RemoteCancellationWatcher(rt).batch
        self._serving_runs = [
            _loop(rt, "cancel runs cancelled elsewhere", watcher, None, until=rt.runs_done)
        ]
        keeper.start()  # not a loop: it renews until the last attempt is over, shutdown too
        await asyncio.sleep(0)

    async def drain(self, before_runs: Callable[[], Awaitable[None]]) -> None:
        """Stop claiming, await ``before_runs`` and then every running attempt, then the rest.

        Shutdown must have been requested (``runtime.request_shutdown()``) first.
        """
        rt = self._rt
        try:
            await asyncio.gather(*self._claiming, return_exceptions=True)
            await before_runs()
            # No attempt starts once the claim loop stopped, so this only shrinks.
            while rt.running:
                runs = [run.task for run in rt.running.values() if run.task is not None]
                await asyncio.gather(*runs, return_exceptions=True)
        finally:
            rt.runs_done.set()
            await asyncio.gather(*self._serving_runs, return_exceptions=True)
            if self._keeper is not None:
                await self._keeper.stop()
            await self._watches.aclose()


def _loop(
    rt: Runtime,
    name: str,
    batch: Callable[[], Awaitable[bool]],
    wakeup: asyncio.Event | None,
    *,
    until: asyncio.Event | None = None,
) -> asyncio.Task[None]:
    return asyncio.create_task(
        run_loop(name, rt, batch, wakeup, until), name=f"durable-execution:{name}"
    )
