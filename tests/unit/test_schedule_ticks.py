"""Tick maths of schedules (``_schedule_ticks``): cron in a time zone, fixed intervals, catch-up.

The daylight-saving cases use Europe/Berlin in 2026: on 29 March the clocks jump from 02:00 to
03:00 (02:30 does not exist), on 25 October they fall back from 03:00 to 02:00 (02:30 happens
twice). A daily 02:30 job must run exactly once on each of those days.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from durable_execution import schedule_tick_key
from durable_execution._options import InvalidOptionError
from durable_execution._schedule_ticks import DueTick, TickSpec, check_tick_spec, due_tick

BERLIN = ZoneInfo("Europe/Berlin")


def cron(expression: str, timezone: str = "Europe/Berlin") -> TickSpec:
    return check_tick_spec("test", expression, None, timezone)


def every(ms: int) -> TickSpec:
    return check_tick_spec("test", None, ms, None)


def local(year: int, month: int, day: int, hour: int, minute: int, *, fold: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN, fold=fold)


def fired_ticks(spec: TickSpec, start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    """The ticks a schedule registered at ``start`` fires when looked at every ``step``."""
    next_tick = spec.next_after(start)
    fired = []
    # Stepped in UTC: adding to a zoned datetime would add wall-clock time, across the gap too.
    now, end = start.astimezone(UTC), end.astimezone(UTC)
    while now < end:
        due = due_tick(spec, next_tick, now)
        if due is not None:
            fired.append(due.tick_at)
            next_tick = due.next_tick_at
        now += step
    return fired


def test_a_daily_cron_job_ticks_in_its_time_zone() -> None:
    spec = cron("0 3 * * *")
    first = spec.next_after(local(2026, 1, 10, 12, 0))
    assert first == local(2026, 1, 11, 3, 0)
    assert first.tzinfo == UTC
    assert spec.next_after(first) == local(2026, 1, 12, 3, 0)
    # July: summer time, still 03:00 local, an hour earlier in UTC.
    assert spec.next_after(local(2026, 7, 1, 4, 0)) == datetime(2026, 7, 2, 1, 0, tzinfo=UTC)


def test_the_spring_gap_runs_a_daily_job_once_at_the_end_of_the_gap() -> None:
    spec = cron("30 2 * * *")
    ticks = fired_ticks(
        spec, local(2026, 3, 27, 12, 0), local(2026, 3, 31, 12, 0), timedelta(seconds=53)
    )
    assert [tick.astimezone(BERLIN) for tick in ticks] == [
        local(2026, 3, 28, 2, 30),
        local(2026, 3, 29, 3, 0),  # 02:30 does not exist that night: run as the clocks jump
        local(2026, 3, 30, 2, 30),
        local(2026, 3, 31, 2, 30),
    ]


def test_the_autumn_repeat_runs_a_daily_job_once() -> None:
    spec = cron("30 2 * * *")
    ticks = fired_ticks(
        spec, local(2026, 10, 23, 12, 0), local(2026, 10, 27, 12, 0), timedelta(seconds=53)
    )
    assert [tick.astimezone(BERLIN) for tick in ticks] == [
        local(2026, 10, 24, 2, 30),
        local(2026, 10, 25, 2, 30),  # the first 02:30 (+02:00); not again at 02:30 +01:00
        local(2026, 10, 26, 2, 30),
        local(2026, 10, 27, 2, 30),
    ]
    assert ticks[1].utcoffset() == timedelta(0)
    assert ticks[1] == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_looking_during_the_repeated_hour_never_fires_a_daily_job_twice() -> None:
    spec = cron("30 2 * * *")
    # Registered during the second 02:00-03:00, after the first 02:30 fired elsewhere: the
    # next tick is the next day's, not the 02:30 already past.
    second_pass = local(2026, 10, 25, 2, 10, fold=1)
    assert spec.next_after(second_pass) == local(2026, 10, 26, 2, 30)


def test_a_half_hourly_job_runs_in_both_halves_of_the_repeated_hour() -> None:
    spec = cron("*/30 * * * *")
    ticks = fired_ticks(
        spec, local(2026, 10, 25, 1, 50), local(2026, 10, 25, 3, 10), timedelta(seconds=41)
    )
    # 02:00 and 02:30 at +02:00, again at +01:00, then 03:00: every 30 minutes of real time.
    first = datetime(2026, 10, 25, 0, 0, tzinfo=UTC)
    assert ticks == [first + timedelta(minutes=30 * n) for n in range(5)]


def test_every_ms_ticks_on_a_grid_anchored_at_the_epoch() -> None:
    spec = every(500)
    moment = datetime(2026, 5, 1, 12, 0, 0, 200_000, tzinfo=UTC)
    assert spec.next_after(moment) == moment.replace(microsecond=500_000)
    assert spec.next_after(moment.replace(microsecond=500_000)) == moment.replace(
        second=1, microsecond=0
    )
    assert spec.latest_at_or_before(moment) == moment.replace(microsecond=0)
    # Whenever an executor started, it computes the same ticks.
    assert {every(500).next_after(moment + timedelta(milliseconds=n)) for n in range(300)} == {
        moment.replace(microsecond=500_000)
    }


def test_a_due_tick_fires_and_moves_on_to_the_next_one() -> None:
    spec = every(1000)
    next_tick = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert due_tick(spec, next_tick, next_tick - timedelta(milliseconds=1)) is None
    assert due_tick(spec, next_tick, next_tick) == DueTick(
        tick_at=next_tick, next_tick_at=next_tick + timedelta(seconds=1)
    )


def test_after_downtime_only_the_latest_missed_tick_fires() -> None:
    spec = cron("0 3 * * *")
    missed = local(2026, 2, 1, 3, 0)
    now = local(2026, 2, 4, 9, 15)  # three nightly ticks missed: 1, 2 and 3 February
    assert due_tick(spec, missed, now) == DueTick(
        tick_at=local(2026, 2, 4, 3, 0), next_tick_at=local(2026, 2, 5, 3, 0)
    )
    interval = every(500)
    start = datetime(2026, 2, 1, tzinfo=UTC)
    assert due_tick(interval, start, start + timedelta(milliseconds=2750)) == DueTick(
        tick_at=start + timedelta(milliseconds=2500),
        next_tick_at=start + timedelta(milliseconds=3000),
    )


@pytest.mark.parametrize(
    ("cron_expression", "every_ms", "timezone", "message"),
    [
        (None, None, None, "exactly one of cron= and every_ms="),
        ("* * * * *", 1000, None, "exactly one of cron= and every_ms="),
        ("0 25 * * *", None, None, "bad hour field: '25'"),
        ("61 * * * *", None, None, "bad minute field: '61'"),
        ("0 3 32 * *", None, None, "bad day-of-month field: '32'"),
        ("0 3 * 13 *", None, None, "bad month field: '13'"),
        ("0 3 * * MOON", None, None, "bad day-of-week field: 'MOON'"),
        ("0 3 * *", None, None, "has 4 fields; it needs 5"),
        ("0 0 3 * * *", None, None, "has 6 fields; it needs 5"),
        ("@daily", None, None, "macros such as @daily are not supported"),
        ("0 0 31 2 *", None, None, "Bad day-of-month"),
        (3, None, None, "cron must be a string"),
        ("0 3 * * *", None, "Europe/Berln", "unknown timezone 'Europe/Berln'"),
        ("0 3 * * *", None, "", "timezone must be an IANA zone name"),
        ("0 3 * * *", None, "../../etc/passwd", "unknown timezone"),
        (None, 99, None, "every_ms must be between 100 and 2**40, got 99"),
        (None, 2**40 + 1, None, "every_ms must be between 100 and 2**40"),
        (None, 1.5, None, "every_ms must be an int"),
        (None, True, None, "every_ms must be an int"),
        (None, 1000, "Europe/Berlin", "timezone= applies to cron= only"),
    ],
)
def test_bad_timing_is_refused_naming_the_problem(
    cron_expression: object, every_ms: object, timezone: object, message: str
) -> None:
    with pytest.raises(InvalidOptionError, match=r"^schedule 'nightly': ") as caught:
        check_tick_spec("nightly", cron_expression, every_ms, timezone)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_good_timing_is_normalised() -> None:
    assert check_tick_spec("s", "0  3 * *   MON-FRI", None, None) == TickSpec(
        cron="0 3 * * MON-FRI", every_ms=None, timezone="UTC"
    )
    assert check_tick_spec("s", None, 100, "UTC") == TickSpec(None, 100, "UTC")


def test_the_tick_key_names_the_schedule_and_the_instant() -> None:
    tick = local(2026, 3, 29, 3, 0)
    assert schedule_tick_key("nightly-report", tick) == (
        "schedule:nightly-report:2026-03-29T01:00:00.000Z"
    )
    assert schedule_tick_key("x", tick.astimezone(UTC)) == schedule_tick_key("x", tick)
