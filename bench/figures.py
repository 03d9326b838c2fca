"""What a measurement is: metrics, the samples of one figure, and their summary statistics.

A *case* (one workload with fixed parameters) produces one sample per repeat; each sample holds
a value for every metric the case declares. A *figure* is one metric of one case on one backend
over all repeats, summarised as min/median/max — the spread matters as much as the middle on a
shared two-core machine.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Metric:
    """A quantity a case measures: ``key`` names it in samples and JSON."""

    key: str
    unit: str
    higher_is_better: bool
    description: str


@dataclass(frozen=True, slots=True)
class Summary:
    minimum: float
    median: float
    maximum: float


def summarise(samples: Sequence[float]) -> Summary:
    if not samples:
        raise ValueError("cannot summarise no samples")
    return Summary(min(samples), statistics.median(samples), max(samples))


def percentile(values: Sequence[float], p: int) -> float:
    """The ``p``-th percentile (1 <= p <= 99), linearly interpolated between closest ranks.

    Interpolation (rather than nearest rank) keeps p95 of 50 samples from being just the
    third-largest value; ``statistics.quantiles``' "inclusive" method does exactly that.
    """
    if not 1 <= p <= 99:
        raise ValueError(f"percentile must be between 1 and 99, got {p}")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]
