"""The unit of work of the harness: a *case* is one workload with fixed parameters.

Each workload module exposes ``cases(scale) -> list[Case]``; the CLI runs every selected case
``repeat`` times per backend, each time on a fresh target, and collects the samples.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias, TypeVar

from bench.figures import Metric
from bench.targets import Backend, Target

# What JSON can hold; used for the free-form details a sample may carry next to its numbers.
JsonValue: TypeAlias = (
    str | int | float | bool | Sequence["JsonValue"] | Mapping[str, "JsonValue"] | None
)

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Sample:
    """One repeat of a case: a value per declared metric, plus details worth keeping."""

    values: Mapping[str, float]
    info: Mapping[str, JsonValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SampleContext:
    target: Target
    timeout_s: float


Measure: TypeAlias = Callable[[SampleContext], Sample]


@dataclass(frozen=True, slots=True)
class Case:
    workload: str
    name: str
    params: Mapping[str, int | str]
    metrics: tuple[Metric, ...]
    backends: tuple[Backend, ...]
    measure: Measure


@dataclass(frozen=True, slots=True)
class Scale:
    """How big the workloads are: full size, CI smoke size, or one size forced by ``--n``."""

    smoke: bool = False
    n: int | None = None

    def sizes(self, full: Sequence[int], smoke: int) -> list[int]:
        if self.n is not None:
            return [self.n]
        return [smoke] if self.smoke else list(full)


class WorkloadFailedError(RuntimeError):
    """A workload ran but produced wrong results: its timings would be meaningless."""


def run_async(work: Callable[[], Coroutine[object, object, _T]], timeout_s: float) -> _T:
    """Run ``work()`` on a fresh event loop, so samples share no loop state, within a deadline."""

    async def bounded() -> _T:
        deadline = asyncio.timeout(timeout_s)
        try:
            async with deadline:
                return await work()
        except TimeoutError as error:
            if not deadline.expired():
                raise
            raise TimeoutError(f"did not finish within {timeout_s:g} s") from error

    return asyncio.run(bounded())
