"""Turning case results into the printed table and the JSON document.

JSON layout (``schema`` 1)::

    {
      "schema": 1, "started_at": ISO-8601, "finished_at": ISO-8601,
      "settings": {"backends": [...], "workloads": [...], "repeat": 3, "smoke": false, "n": null},
      "machine": {...},                       # see bench.machine
      "figures": [                            # one per case x backend x metric that ran
        {"workload": "W1", "case": "W1 throughput n=1000", "params": {"n": 1000, ...},
         "backend": "sqlite", "metric": "tasks_per_s", "unit": "tasks/s",
         "higher_is_better": true, "description": "...",
         "samples": [...], "min": ..., "median": ..., "max": ...}
      ],
      "floor_ratios": [                       # W1 medians over the floor's, same n and backend
        {"backend": "sqlite", "n": 1000, "enqueue": "gather", "w1_metric": "tasks_per_s",
         "floor_batch": 100,
         "w1_median": ..., "floor_median": ..., "ratio": ...}
      ],
      "runs": [                               # every case x backend, with per-sample details
        {"workload": ..., "case": ..., "backend": ..., "params": {...}, "ok": true,
         "error": null, "samples": [{"values": {...}, "info": {...}}]}
      ]
    }
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bench.cases import Case, JsonValue, Sample
from bench.figures import summarise
from bench.targets import Backend

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class CaseResult:
    """All samples of one case on one backend, or the error that stopped it."""

    case: Case
    backend: Backend
    samples: Sequence[Sample]
    error: str | None = None


def figures(results: Sequence[CaseResult]) -> list[dict[str, JsonValue]]:
    out: list[dict[str, JsonValue]] = []
    for result in results:
        for metric in result.case.metrics:
            values = [sample.values[metric.key] for sample in result.samples]
            if not values:
                continue
            summary = summarise(values)
            out.append(
                {
                    "workload": result.case.workload,
                    "case": result.case.name,
                    "params": dict(result.case.params),
                    "backend": result.backend,
                    "metric": metric.key,
                    "unit": metric.unit,
                    "higher_is_better": metric.higher_is_better,
                    "description": metric.description,
                    "samples": values,
                    "min": summary.minimum,
                    "median": summary.median,
                    "max": summary.maximum,
                }
            )
    return out


def floor_ratios(results: Sequence[CaseResult]) -> list[dict[str, JsonValue]]:
    """W1's medians as fractions of the floor's median with the same N on the same backend."""

    def median(result: CaseResult, key: str) -> float | None:
        values = [sample.values[key] for sample in result.samples if key in sample.values]
        return summarise(values).median if values else None

    floors = {
        (r.backend, r.case.params.get("n"), r.case.params.get("batch")): r
        for r in results
        if r.case.workload == "floor"
    }
    out: list[dict[str, JsonValue]] = []
    for result in results:
        if result.case.workload != "W1":
            continue
        n = result.case.params.get("n")
        for (backend, floor_n, batch), floor in sorted(
            floors.items(), key=lambda item: -int(item[0][2] or 0)
        ):
            if backend != result.backend or floor_n != n:
                continue
            floor_median = median(floor, "rows_per_s")
            for key in ("tasks_per_s", "closed_per_s"):
                w1_median = median(result, key)
                if w1_median is None or not floor_median:
                    continue
                out.append(
                    {
                        "backend": result.backend,
                        "n": n,
                        "enqueue": result.case.params.get("enqueue"),
                        "w1_metric": key,
                        "floor_batch": batch,
                        "w1_median": w1_median,
                        "floor_median": floor_median,
                        "ratio": w1_median / floor_median,
                    }
                )
    return out


def runs(results: Sequence[CaseResult]) -> list[dict[str, JsonValue]]:
    return [
        {
            "workload": result.case.workload,
            "case": result.case.name,
            "backend": result.backend,
            "params": dict(result.case.params),
            "ok": result.error is None,
            "error": result.error,
            "samples": [
                {"values": dict(sample.values), "info": dict(sample.info)}
                for sample in result.samples
            ],
        }
        for result in results
    ]


def document(
    results: Sequence[CaseResult],
    *,
    settings: Mapping[str, JsonValue],
    machine: Mapping[str, JsonValue],
    started_at: str,
    finished_at: str,
) -> dict[str, JsonValue]:
    return {
        "schema": SCHEMA_VERSION,
        "started_at": started_at,
        "finished_at": finished_at,
        "settings": dict(settings),
        "machine": dict(machine),
        "figures": figures(results),
        "floor_ratios": floor_ratios(results),
        "runs": runs(results),
    }


def format_number(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}"


def format_table(results: Sequence[CaseResult]) -> str:
    """The figures as an aligned text table, then the floor ratios, then any failures."""
    header = ("case", "backend", "metric", "median", "min", "max", "unit")
    rows: list[tuple[str, ...]] = [header]
    for figure in figures(results):
        rows.append(
            (
                str(figure["case"]),
                str(figure["backend"]),
                str(figure["metric"]),
                *(_number(figure[key]) for key in ("median", "min", "max")),
                str(figure["unit"]),
            )
        )
    lines = _aligned(rows, numeric_columns={3, 4, 5})

    ratios = floor_ratios(results)
    if ratios:
        lines += ["", "W1 as a fraction of the floor (medians, same N and backend):"]
        ratio_rows: list[tuple[str, ...]] = [
            ("backend", "n", "enqueue", "W1 metric", "W1", "floor batch", "floor rows/s", "ratio")
        ]
        for ratio in ratios:
            ratio_rows.append(
                (
                    str(ratio["backend"]),
                    str(ratio["n"]),
                    str(ratio["enqueue"]),
                    str(ratio["w1_metric"]),
                    _number(ratio["w1_median"]),
                    str(ratio["floor_batch"]),
                    _number(ratio["floor_median"]),
                    f"{_float(ratio['ratio']):.1%}",
                )
            )
        lines += _aligned(ratio_rows, numeric_columns={1, 4, 5, 6, 7})

    failures = [result for result in results if result.error is not None]
    if failures:
        lines += ["", "FAILED:"]
        lines += [f"  {r.case.name} on {r.backend}: {r.error}" for r in failures]
    return "\n".join(lines)


def _float(value: JsonValue) -> float:
    if not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _number(value: JsonValue) -> str:
    return format_number(_float(value))


def _aligned(rows: Sequence[tuple[str, ...]], numeric_columns: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.rjust(widths[i]) if i in numeric_columns else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]
