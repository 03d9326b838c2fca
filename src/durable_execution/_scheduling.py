"""Defining schedules (``executor.schedule``) and storing them when the executor starts.

Everything is checked when the schedule is defined, so a mistake fails at import time rather
than at 3 a.m.: the id, the timing (``_schedule_ticks.check_tick_spec``: exactly one of cron
and every_ms, the cron fields, the time zone), the task (registered on this executor) and the
input (serialized now; a task with an input validator has its input validated, possibly
asynchronously, at ``start()``, which then raises).

At start, the executor upserts its schedules into the storage: a new one starts with the
first tick after now; a known one keeps its next tick unless its timing changed. Rows of
schedules that no started executor defines are left alone (executors of other applications or
versions may share the database); ``durable-execution schedules`` shows them as overdue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from durable_execution import clock
from durable_execution._options import InvalidOptionError
from durable_execution._registry import storable_input, validated_input
from durable_execution._runtime import Runtime
from durable_execution._schedule_ticks import TickSpec, check_tick_spec
from durable_execution.schedules import Schedule
from durable_execution.storage.types import ScheduleRecord
from durable_execution.tasks import TaskDefinition

MAX_SCHEDULE_ID_LENGTH: Final = 200
# No ':' (it separates the parts of a tick key) and nothing a shell or URL would mangle.
_SCHEDULE_ID: Final = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True, slots=True)
class DefinedSchedule:
    """A schedule defined on this executor: what it stores at start."""

    schedule: Schedule
    spec: TickSpec
    definition: TaskDefinition
    input: object
    # The serialized input, when it could be made at definition time (no async validator).
    run_input: str | None


def check_schedule_id(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidOptionError(f"schedule id must be a non-empty string, got {value!r}")
    if len(value) > MAX_SCHEDULE_ID_LENGTH:
        raise InvalidOptionError(
            f"schedule id {value[:40]!r}… is longer than {MAX_SCHEDULE_ID_LENGTH} characters"
        )
    if _SCHEDULE_ID.fullmatch(value) is None:
        raise InvalidOptionError(
            f"schedule id {value!r} may hold only letters, digits, '_', '.' and '-'"
        )
    return value


def define_schedule(
    rt: Runtime,
    definition: TaskDefinition,
    *,
    schedule_id: object,
    cron: object,
    every_ms: object,
    timezone: object,
    input: object,
) -> DefinedSchedule:
    """A checked schedule (see the module docstring); raises an error naming the problem."""
    checked_id = check_schedule_id(schedule_id)
    if checked_id in rt.schedules:
        raise InvalidOptionError(f"schedule id {checked_id!r} is already defined on this executor")
    spec = check_tick_spec(checked_id, cron, every_ms, timezone)
    run_input = None
    if definition.validator is None:
        run_input = _serialized(rt, definition, checked_id, input)
    return DefinedSchedule(
        schedule=Schedule(
            id=checked_id,
            task_id=definition.id,
            cron=spec.cron,
            every_ms=spec.every_ms,
            timezone=spec.timezone,
        ),
        spec=spec,
        definition=definition,
        input=input,
        run_input=run_input,
    )


def _serialized(rt: Runtime, definition: TaskDefinition, schedule_id: str, value: object) -> str:
    return rt.serializer.serialize_limited(
        storable_input(definition, value), f"the input of schedule {schedule_id!r}"
    )


async def register_schedules(rt: Runtime) -> None:
    """Store this executor's schedules (one transaction), before its loops start."""
    if not rt.schedules:
        return
    now = clock.now()
    records: list[ScheduleRecord] = []
    # In id order, as the loop reads them: two executors upserting the same rows lock them in
    # the same order (no deadlock between their transactions on PostgreSQL).
    for _, defined in sorted(rt.schedules.items()):
        run_input = defined.run_input
        if run_input is None:
            validated = await validated_input(defined.definition, defined.input)
            run_input = _serialized(rt, defined.definition, defined.schedule.id, validated)
        records.append(
            ScheduleRecord(
                schedule_id=defined.schedule.id,
                task_id=defined.definition.id,
                cron=defined.spec.cron,
                every_ms=defined.spec.every_ms,
                timezone=defined.spec.timezone,
                run_input=run_input,
                next_tick_at=defined.spec.next_after(now),
                created_at=now,
                updated_at=now,
            )
        )
    await rt.transactions.run(lambda tx: tx.register_task_schedules(records))
    rt.logger.info("Registered %d schedule(s): %s", len(records), ", ".join(rt.schedules))
