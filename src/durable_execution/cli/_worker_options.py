"""The executor options an operator tunes on ``durable-execution worker``, beyond --concurrency.

Kept apart from ``_worker`` so the command reads as what it does. Ranges are the executor's own
(``_options``): a value the executor would refuse is refused here first, with click's usage error
naming the option.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Final, TypeVar

import click

from durable_execution._leases import DEFAULT_EXPIRE_MS, DEFAULT_MAX_LEASE_EXPIRIES
from durable_execution._options import MAX_COUNT, MAX_DURATION_MS
from durable_execution.cli._prune import parse_duration

DEFAULT_MAX_OUTPUT_BYTES: Final = 1_048_576
_F = TypeVar("_F", bound=Callable[..., object])


@dataclass(frozen=True, slots=True)
class ExecutorTuning:
    expire_ms: int
    max_lease_expiries: int | None
    max_serialized_size_bytes: int
    retention: timedelta | None = None

    def describe(self, poll_interval_ms: int) -> str:
        return (
            f"expire_ms {self.expire_ms}, max_lease_expiries {self.max_lease_expiries}, "
            f"max_serialized_size_bytes {self.max_serialized_size_bytes}, "
            f"poll_interval_ms {poll_interval_ms}, retention {self.retention or 'off'}"
        )


def executor_options(command: _F) -> _F:
    """Adds --expire-ms, --max-lease-expiries, --max-serialized-size-bytes and --retention."""
    decorators = [
        click.option(
            "--expire-ms",
            type=click.IntRange(1, MAX_DURATION_MS),
            default=DEFAULT_EXPIRE_MS,
            show_default=True,
            help="Grace period after an attempt's timeout before another worker may assume its "
            "process died and run it again (the lease is timeout + this).",
        ),
        click.option(
            "--max-lease-expiries",
            type=click.IntRange(0, MAX_COUNT),
            default=DEFAULT_MAX_LEASE_EXPIRIES,
            show_default=True,
            help="Fail an execution once its lease has expired this many times (its worker kept "
            "dying); 0 re-runs it forever.",
        ),
        click.option(
            "--max-serialized-size-bytes",
            type=click.IntRange(1, 2**30),
            default=DEFAULT_MAX_OUTPUT_BYTES,
            show_default=True,
            help="Largest task output (serialized, in bytes) this worker stores; a larger one "
            "fails the attempt.",
        ),
        click.option(
            "--retention",
            metavar="DURATION",
            callback=_retention,
            help="Prune trees of executions finished longer ago than this (7d, 12h, 1d12h), "
            "automatically, one worker at a time. Default: keep everything.",
        ),
    ]
    for decorate in reversed(decorators):
        command = decorate(command)
    return command


def _retention(ctx: click.Context, param: click.Parameter, value: str | None) -> timedelta | None:
    if value is None:
        return None
    try:
        duration = parse_duration(value)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=param) from None
    if duration <= timedelta(0):
        raise click.BadParameter("must be longer than zero", ctx=ctx, param=param)
    return duration


def tuning(
    expire_ms: int,
    max_lease_expiries: int,
    max_serialized_size_bytes: int,
    retention: timedelta | None = None,
) -> ExecutorTuning:
    return ExecutorTuning(
        expire_ms=expire_ms,
        max_lease_expiries=max_lease_expiries or None,
        max_serialized_size_bytes=max_serialized_size_bytes,
        retention=retention,
    )
