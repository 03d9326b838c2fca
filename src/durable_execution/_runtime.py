"""The state one executor's background machinery shares: storage access, registry, wake-ups.

Wake-ups replace idle polling on the hot path. ``ready_wakeup`` is set whenever this process makes
an execution claimable (an enqueue, a run freeing a slot, children or a finalize inserted, an
expired lease reset) — immediately, or by a timer at its ``start_at``. ``close_wakeup`` is set
whenever this process commits a finished status. The loops still wake after an idle sleep to see
work that other processes created.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from durable_execution import clock
from durable_execution._coalescing import Coalescer
from durable_execution._finished_poller import FinishedPoller
from durable_execution._notifier import FinishedNotifier
from durable_execution._registry import TaskRegistry
from durable_execution._transactions import TransactionRunner
from durable_execution.serializer import CheckedSerializer
from durable_execution.storage.types import (
    DurableStorageTx,
    TaskExecutionRecord,
)

if TYPE_CHECKING:
    from durable_execution._local_runs import LocalRun
    from durable_execution._scheduling import DefinedSchedule

BATCH_SIZE: Final = 100
RECORD_READ_BATCH: Final = 500
# Timers fire a little after start_at so that the claim query (start_at <= now) already matches.
_TIMER_SLACK_S: Final = 0.002


@dataclass(frozen=True, slots=True)
class ExecutorConfig:
    expire_ms: int
    intra_batch_sleep_ms: int
    max_concurrent_task_executions: int
    batch_size: int = BATCH_SIZE
    # The lease expiry that reaches this count fails the execution instead of re-running it;
    # None re-runs forever (the reference's behaviour).
    max_lease_expiries: int | None = None
    # Automatic retention (see _retention_loop); None keeps every execution.
    retention: timedelta | None = None
    # The queues claimed from; None: those of the registered tasks (see _claims).
    queues: tuple[str, ...] | None = None


class Runtime:
    def __init__(
        self,
        *,
        transactions: TransactionRunner,
        serializer: CheckedSerializer,
        logger: logging.Logger,
        config: ExecutorConfig,
    ) -> None:
        self.transactions = transactions
        self.serializer = serializer
        self.logger = logger
        self.config = config
        self.registry = TaskRegistry()
        # schedule id -> the schedules defined on this executor (stored and fired once started).
        self.schedules: dict[str, DefinedSchedule] = {}
        self.notifier = FinishedNotifier()
        self.finished_poller = FinishedPoller(transactions)
        # Concurrent reads of single executions (handles) share a transaction.
        self.record_reader: Coalescer[str, TaskExecutionRecord | None] = Coalescer(
            transactions, _read_records, max_batch=RECORD_READ_BATCH
        )
        # execution_id -> the attempt running in this process.
        self.running: dict[str, LocalRun] = {}
        self.shutdown_event = asyncio.Event()
        # Set by shutdown once the last attempt running here ended: the loops that serve running
        # attempts (stopping those cancelled elsewhere) run until then, not just until the drain
        # starts, or a cancel arriving while draining would go unheard.
        self.runs_done = asyncio.Event()
        self.ready_wakeup = asyncio.Event()
        self.close_wakeup = asyncio.Event()
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._next_timer = 0

    @property
    def shutdown_requested(self) -> bool:
        return self.shutdown_event.is_set()

    def free_slots(self) -> int:
        return self.config.max_concurrent_task_executions - len(self.running)

    def wake_ready_at(self, start_ats: Iterable[datetime]) -> None:
        """Wake the claim loop now, or at each future ``start_at`` (one timer per distinct time)."""
        now = clock.now()
        delays: set[float] = set()
        for start_at in start_ats:
            if start_at > now:
                delays.add((start_at - now).total_seconds())
            else:
                self.ready_wakeup.set()
        if self.shutdown_requested:
            return
        loop = asyncio.get_running_loop()
        for delay in delays:
            self._next_timer += 1
            key = self._next_timer
            self._timers[key] = loop.call_later(delay + _TIMER_SLACK_S, self._timer_fired, key)

    def _timer_fired(self, key: int) -> None:
        self._timers.pop(key, None)
        self.ready_wakeup.set()

    def executions_finished(
        self,
        execution_ids: Iterable[str],
        records: Mapping[str, TaskExecutionRecord] | None = None,
    ) -> None:
        """Called after a commit that wrote finished statuses for ``execution_ids``; ``records``
        are the rows as committed, where the writer knows them (handles then skip a read)."""
        self.notifier.notify(execution_ids, records)
        self.close_wakeup.set()

    def request_shutdown(self) -> None:
        self.shutdown_event.set()
        for event in (self.ready_wakeup, self.close_wakeup):
            event.set()
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

    async def sleep(self, seconds: float, wakeup: asyncio.Event) -> None:
        """Sleep up to ``seconds``; return early when ``wakeup`` is set (shutdown sets them all)."""
        if wakeup.is_set():
            return
        try:
            async with asyncio.timeout(seconds):
                await wakeup.wait()
        except TimeoutError:
            pass


async def _read_records(
    tx: DurableStorageTx, execution_ids: Sequence[str]
) -> list[TaskExecutionRecord | None]:
    """The record of each id, in order; None for an id that has no execution."""
    rows = await tx.get_task_executions(execution_ids)
    by_id = {row.execution_id: row for row in rows}
    return [by_id.get(execution_id) for execution_id in execution_ids]
