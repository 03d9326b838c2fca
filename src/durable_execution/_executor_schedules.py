"""``executor.schedule(...)``: the executor's schedule method, kept in a module of its own (a
base class of :class:`DurableExecutor`) so that ``executor.py`` stays one readable module.
What a schedule is and guarantees: :mod:`durable_execution.schedules`."""

from __future__ import annotations

from typing import Any, TypeVar, overload

from durable_execution._background import BackgroundLoops
from durable_execution._runtime import Runtime
from durable_execution._scheduling import define_schedule
from durable_execution.errors import DurableExecutionError
from durable_execution.schedules import Schedule
from durable_execution.tasks import Task, TaskDefinition

InputT = TypeVar("InputT")


class ExecutorSchedules:
    """The schedule method of :class:`DurableExecutor`, which provides the members below."""

    _rt: Runtime
    _background: BackgroundLoops

    def _check_open(self) -> None:
        raise NotImplementedError  # provided by DurableExecutor

    def _registered(self, task: Task[Any, Any]) -> TaskDefinition:
        raise NotImplementedError  # provided by DurableExecutor

    @overload
    def schedule(
        self,
        task: Task[None, Any],
        *,
        id: str,
        cron: str | None = None,
        every_ms: int | None = None,
        timezone: str | None = None,
        input: None = None,
    ) -> Schedule: ...

    @overload
    def schedule(
        self,
        task: Task[InputT, Any],
        *,
        id: str,
        input: InputT,
        cron: str | None = None,
        every_ms: int | None = None,
        timezone: str | None = None,
    ) -> Schedule: ...

    def schedule(
        self,
        task: Task[Any, Any],
        *,
        id: str,
        cron: str | None = None,
        every_ms: int | None = None,
        timezone: str | None = None,
        input: object = None,
    ) -> Schedule:
        """Run ``task`` with ``input`` on a schedule: ``cron`` (five fields, e.g.
        ``"0 3 * * *"``, read in ``timezone``, an IANA name, default UTC) or ``every_ms``.

        Define schedules before ``start()``; every executor that defines a schedule stores it
        under ``id`` when it starts and fires its ticks, and each tick creates exactly one
        execution however many executors run it. After downtime the latest missed tick fires
        once, not once per missed tick. Raises an error naming the problem for a bad id, timing,
        time zone or input, or a task not registered here.
        """
        self._check_open()
        if self._background.started:
            raise DurableExecutionError(
                f"Schedule {id!r}: define schedules before the executor starts",
                is_retryable=False,
            )
        defined = define_schedule(
            self._rt,
            self._registered(task),
            schedule_id=id,
            cron=cron,
            every_ms=every_ms,
            timezone=timezone,
            input=input,
        )
        self._rt.schedules[defined.schedule.id] = defined
        return defined.schedule
