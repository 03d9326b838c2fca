"""When a schedule ticks: cron expressions (by cronsim) and fixed intervals, in a time zone.

Cron expressions are parsed and evaluated by `cronsim <https://pypi.org/project/cronsim/>`_,
never by our own parser: it is small, pure Python, typed, maintained (it is Healthchecks'
parser) and follows Debian cron through daylight-saving changes — a daily ``30 2 * * *`` in
Europe/Berlin runs at 03:00 on the night 02:30 does not exist, and once (at the first 02:30) on
the night it happens twice; an expression whose minute or hour field starts with ``*`` runs in
both halves of a repeated hour, as cron does. Only the standard five fields are accepted.

``every_ms`` schedules tick on a grid anchored at the Unix epoch (tick k is at
``k * every_ms`` ms), so every executor computes the same ticks whenever it started.

Missed ticks (see :func:`due_tick`): when a schedule is found due, it fires once, for the
latest tick that is due, and moves on to the first tick after now. Ticks in between are not
fired: after three days with every worker down, a nightly report runs once, not three times.
Running each missed tick would flood the queue with stale work after a long outage, and most
periodic jobs (reports, syncs, cleanups) only need the latest state. Peers agree: pgqueuer
collapses missed ticks into one run, procrastinate catches up only the latest tick (if under 10
minutes late), River skips them. A task that must cover every period can look at when it last
ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from durable_execution._options import InvalidOptionError
from durable_execution.clock import from_epoch_ms, to_epoch_ms

MIN_EVERY_MS: Final = 100
MAX_EVERY_MS: Final = 2**40
_FIELDS: Final = ("minute", "hour", "day-of-month", "month", "day-of-week")
_FIELD_EXAMPLE: Final = "minute hour day-of-month month day-of-week, e.g. '0 3 * * *'"
_ONE_SECOND: Final = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class TickSpec:
    """How a schedule ticks: exactly one of ``cron`` and ``every_ms``; ``timezone`` is the
    zone a cron expression is read in (always ``UTC`` for ``every_ms``)."""

    cron: str | None
    every_ms: int | None
    timezone: str

    def next_after(self, moment: datetime) -> datetime:
        """The first tick strictly after ``moment`` (aware), in UTC."""
        # Compared in UTC: two datetimes of one ZoneInfo compare by wall time, not as instants.
        moment = moment.astimezone(UTC)
        if self.every_ms is not None:
            ticks = to_epoch_ms(moment) // self.every_ms + 1
            return from_epoch_ms(ticks * self.every_ms)
        assert self.cron is not None  # one of the two is set (see check_tick_spec)
        zone = ZoneInfo(self.timezone)
        # Cron's local-time arithmetic can give a tick before `moment` when `moment` lies in
        # the second pass of a repeated hour (it names the first pass): skip those.
        for tick in CronSim(self.cron, moment.astimezone(zone)):
            if tick.astimezone(UTC) > moment:
                return tick.astimezone(UTC)
        raise AssertionError("unreachable: cronsim iterates without end")  # pragma: no cover

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        """The last tick at or before ``moment`` (aware), in UTC; ``None`` if none in 50 years."""
        if self.every_ms is not None:
            return from_epoch_ms(to_epoch_ms(moment) // self.every_ms * self.every_ms)
        assert self.cron is not None
        zone = ZoneInfo(self.timezone)
        # Iterating backwards from one second later includes `moment` itself.
        start = (moment.astimezone(zone) + _ONE_SECOND).replace(microsecond=0)
        tick = next(CronSim(self.cron, start, reverse=True), None)
        return None if tick is None else tick.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class DueTick:
    """What firing a due schedule does: fire ``tick_at``, then wait for ``next_tick_at``."""

    tick_at: datetime
    next_tick_at: datetime


def due_tick(spec: TickSpec, next_tick_at: datetime, now: datetime) -> DueTick | None:
    """The tick to fire now for a schedule whose next tick is ``next_tick_at``, or ``None`` if
    it is not due yet. Of several due ticks only the latest fires (see the module docstring)."""
    next_tick_at, now = next_tick_at.astimezone(UTC), now.astimezone(UTC)  # as instants
    if next_tick_at > now:
        return None
    latest = spec.latest_at_or_before(now)
    tick_at = next_tick_at if latest is None or latest < next_tick_at else latest
    return DueTick(tick_at=tick_at, next_tick_at=spec.next_after(now))


def check_tick_spec(schedule_id: str, cron: object, every_ms: object, timezone: object) -> TickSpec:
    """A valid :class:`TickSpec`, or an :class:`InvalidOptionError` naming what is wrong."""
    where = f"schedule {schedule_id!r}"
    if (cron is None) == (every_ms is None):
        raise InvalidOptionError(f"{where}: give exactly one of cron= and every_ms=")
    if every_ms is not None:
        if not isinstance(every_ms, int) or isinstance(every_ms, bool):
            raise InvalidOptionError(f"{where}: every_ms must be an int, got {every_ms!r}")
        if not MIN_EVERY_MS <= every_ms <= MAX_EVERY_MS:
            raise InvalidOptionError(
                f"{where}: every_ms must be between {MIN_EVERY_MS} and 2**40, got {every_ms}"
            )
        if timezone is not None and timezone != "UTC":
            raise InvalidOptionError(
                f"{where}: timezone= applies to cron= only (every_ms ticks are a fixed"
                " interval, whatever the zone)"
            )
        return TickSpec(cron=None, every_ms=every_ms, timezone="UTC")
    zone = check_timezone(where, "UTC" if timezone is None else timezone)
    return TickSpec(cron=check_cron(where, cron), every_ms=None, timezone=zone)


def check_timezone(where: str, timezone: object) -> str:
    """``timezone`` if zoneinfo knows it (an IANA name such as ``Europe/Berlin``)."""
    if not isinstance(timezone, str) or not timezone:
        raise InvalidOptionError(f"{where}: timezone must be an IANA zone name, got {timezone!r}")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidOptionError(
            f"{where}: unknown timezone {timezone!r} (expected an IANA zone name such as"
            " 'Europe/Berlin' or 'UTC')"
        ) from None
    return timezone


def check_cron(where: str, cron: object) -> str:
    """``cron`` if it is a valid five-field expression; else an error naming the bad field."""
    if not isinstance(cron, str):
        raise InvalidOptionError(f"{where}: cron must be a string, got {cron!r}")
    fields = cron.split()
    if cron.strip().startswith("@"):
        raise InvalidOptionError(
            f"{where}: cron expression {cron!r}: macros such as @daily are not supported; write"
            f" the five fields ({_FIELD_EXAMPLE})"
        )
    if len(fields) != len(_FIELDS):
        raise InvalidOptionError(
            f"{where}: cron expression {cron!r} has {len(fields)} fields; it needs 5:"
            f" {_FIELD_EXAMPLE}"
        )
    for name, value in zip(_FIELDS, fields, strict=True):
        # Each field alone, the others wildcards: cronsim's error then names this field.
        probe = ["*"] * len(_FIELDS)
        probe[_FIELDS.index(name)] = value
        try:
            CronSim(" ".join(probe), datetime(2000, 1, 1, tzinfo=UTC))
        except CronSimError:
            raise InvalidOptionError(
                f"{where}: cron expression {cron!r} has a bad {name} field: {value!r}"
            ) from None
    try:
        CronSim(cron, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as error:  # fields valid alone, not together (e.g. '0 0 31 2 *')
        raise InvalidOptionError(f"{where}: cron expression {cron!r}: {error}") from None
    return " ".join(fields)
