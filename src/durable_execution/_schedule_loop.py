"""The schedule loop: every started executor with schedules fires their due ticks.

Each pass is one storage transaction: read this executor's schedules; for each one due, pick
the tick to fire (``_schedule_ticks.due_tick``), move the row's ``next_tick_at`` on with a
compare-and-set (:meth:`DurableStorageTx.advance_task_schedule`) and, only if that matched,
insert the tick's execution. Both commit together or not at all, so:

* however many executors run the loop, each tick creates exactly one execution: the first
  to advance the row wins, the others' compare-and-set matches nothing;
* a crash (or a lost connection) before the commit loses nothing: the tick is still due and
  the next pass, here or elsewhere, fires it; a retry after an unknown commit outcome finds the
  row advanced and inserts nothing.

The row is the truth: a pass fires the schedule as stored (timing, task, input), which is what
the last executor to start defined. A schedule whose task is not registered here is left to
the executors that have it.

Between passes the loop sleeps until the earliest next tick (a little after it), at most
``_MAX_WAIT_S``, so that a tick moved by an executor that redefined a schedule is seen soon.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Final

from durable_execution import clock
from durable_execution._options import resolve_enqueue_options
from durable_execution._records import new_record
from durable_execution._runtime import Runtime
from durable_execution._schedule_ticks import TickSpec, due_tick
from durable_execution._transactions import is_transient, jittered
from durable_execution.ids import generate_execution_id
from durable_execution.schedules import schedule_tick_key
from durable_execution.storage.types import (
    DurableStorageTx,
    ScheduleRecord,
    ScheduleTickAdvance,
    TaskExecutionRecord,
)

_MAX_WAIT_S: Final = 30.0
_MIN_WAIT_S: Final = 0.01
# Wake a little after the tick, so that `next_tick_at <= now` already holds.
_TICK_SLACK_S: Final = 0.002
_ERROR_BACKOFF_S: Final = 1.0
_MAX_ERROR_BACKOFF_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class FiredTick:
    schedule_id: str
    tick_at: datetime
    record: TaskExecutionRecord


@dataclass(slots=True)
class Pass:
    """What one pass did: the ticks it fired, and when the next one is due (None: unknown)."""

    fired: list[FiredTick] = field(default_factory=list)
    next_due: datetime | None = None

    def due_at(self, moment: datetime) -> None:
        if self.next_due is None or moment < self.next_due:
            self.next_due = moment


def tick_record(
    rt: Runtime, schedule: ScheduleRecord, tick_at: datetime, now: datetime
) -> TaskExecutionRecord | None:
    """The execution one tick of ``schedule`` creates (None: its task is not registered here).

    Its key is :func:`schedule_tick_key` (``schedule:<id>:<tick>``), in the log line that
    reports it (see :func:`run_schedule_loop`) and stored as the execution's idempotency key:
    the schedule row's compare-and-set already fires each tick once, and the key makes the
    database say so too (an execution that holds a tick's key, however it was enqueued, stands
    for that tick: the insert then stores nothing).
    """
    definition = rt.registry.get(schedule.task_id)
    if definition is None:
        return None
    options = replace(
        resolve_enqueue_options(definition, None),
        idempotency_key=schedule_tick_key(schedule.schedule_id, tick_at),
    )
    return new_record(
        task_id=schedule.task_id,
        execution_id=generate_execution_id(),
        options=options,
        run_input=schedule.run_input,
        now=now,
    )


class ScheduleFirer:
    """One executor's passes over its schedules (its state: what it already warned about)."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._ids = sorted(rt.schedules)
        self._warned: set[str] = set()

    def _warn_once(self, schedule_id: str, message: str, *args: object) -> None:
        if schedule_id not in self._warned:
            self._warned.add(schedule_id)
            self._rt.logger.warning(message, *args)

    async def run_pass(self, tx: DurableStorageTx) -> Pass:
        now = clock.now()
        outcome = Pass()
        for schedule in await tx.get_task_schedules(self._ids):
            try:
                spec = TickSpec(schedule.cron, schedule.every_ms, schedule.timezone)
                due = due_tick(spec, schedule.next_tick_at, now)
            except Exception as error:  # a row written by hand or by another version
                self._warn_once(
                    schedule.schedule_id,
                    "Schedule %s cannot be evaluated (cron %r, every_ms %r, timezone %r): %r",
                    schedule.schedule_id,
                    schedule.cron,
                    schedule.every_ms,
                    schedule.timezone,
                    error,
                )
                continue
            if due is None:
                outcome.due_at(schedule.next_tick_at)
                continue
            record = tick_record(self._rt, schedule, due.tick_at, now)
            if record is None:
                self._warn_once(
                    schedule.schedule_id,
                    "Schedule %s runs task %s, which is not registered on this executor: its"
                    " ticks are left to executors that have it",
                    schedule.schedule_id,
                    schedule.task_id,
                )
                continue
            outcome.due_at(due.next_tick_at)
            advanced = await tx.advance_task_schedule(
                ScheduleTickAdvance(
                    schedule_id=schedule.schedule_id,
                    expected_next_tick_at=schedule.next_tick_at,
                    next_tick_at=due.next_tick_at,
                    tick_at=due.tick_at,
                    execution_id=record.execution_id,
                    updated_at=now,
                )
            )
            if advanced:  # this executor won the tick: its execution commits with the advance
                await tx.insert_task_executions([record])
                outcome.fired.append(FiredTick(schedule.schedule_id, due.tick_at, record))
        return outcome


async def run_schedule_loop(rt: Runtime) -> None:
    """Fire this executor's due schedule ticks until shutdown is requested."""
    stop = rt.shutdown_event
    logger = rt.logger
    firer = ScheduleFirer(rt)
    backoff_s = _ERROR_BACKOFF_S
    while not stop.is_set():
        try:
            # A retry re-reads the rows: a tick whose advance did commit is no longer due.
            outcome = await rt.transactions.run(firer.run_pass)
        except Exception as error:
            logger.error("Error in the schedule loop: %r", error, exc_info=error)
            wait_s = backoff_s if is_transient(error) else _MAX_ERROR_BACKOFF_S
            backoff_s = min(backoff_s * 2, _MAX_ERROR_BACKOFF_S)
            await rt.sleep(jittered(wait_s), stop)
            continue
        backoff_s = _ERROR_BACKOFF_S
        for fired in outcome.fired:
            logger.info(
                "Schedule %s fired tick %s as execution %s",
                fired.schedule_id,
                schedule_tick_key(fired.schedule_id, fired.tick_at),
                fired.record.execution_id,
            )
        if outcome.fired:
            rt.wake_ready_at([fired.record.start_at for fired in outcome.fired])
        wait_s = _MAX_WAIT_S
        if outcome.next_due is not None:
            until_due = (outcome.next_due - clock.now()).total_seconds() + _TICK_SLACK_S
            wait_s = min(max(until_due, _MIN_WAIT_S), _MAX_WAIT_S)
        await rt.sleep(wait_s, stop)
    logger.debug("Executor shut down: schedule loop stopped")
