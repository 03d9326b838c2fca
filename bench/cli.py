"""``python -m bench``: run the selected workloads on the selected backends and report.

Examples::

    python -m bench                                   # everything, 3 repeats (takes a while)
    python -m bench --backend sqlite --workload W1 --workload floor --json out.json
    python -m bench --smoke --json smoke.json         # tiny sizes, 1 repeat (CI)
    python -m bench --backend sqlite --sqlite-synchronous normal   # SQLite's opt-in NORMAL

Each case runs ``--repeat`` times per backend, every time on a fresh storage (a new SQLite file,
a new PostgreSQL database created through ``--postgres-admin-url`` and dropped afterwards).
Progress goes to stderr, the table to stdout. The exit status is 1 if any case failed (wrong
results, an error, a timeout); timings never fail a run.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

from bench.cases import Case, JsonValue, Sample, SampleContext, Scale
from bench.catalog import DESCRIPTIONS, WORKLOADS
from bench.machine import machine_facts
from bench.report import CaseResult, document, format_number, format_table
from bench.subprocesses import kill_children
from bench.targets import (
    BACKENDS,
    Backend,
    fresh_target,
    postgres_admin_url,
    remove_targets_in_use,
)
from durable_execution.storage import SqliteSynchronous

ALL = "all"
DEFAULT_TIMEOUT_S = 900.0


def _parser() -> argparse.ArgumentParser:
    workloads = "\n".join(f"  {name:6} {text}" for name, text in DESCRIPTIONS.items())
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the durable executor on each storage backend.",
        epilog=f"workloads:\n{workloads}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--backend",
        action="append",
        choices=(*BACKENDS, ALL),
        help="a backend to measure; repeatable; default: all",
    )
    parser.add_argument(
        "--workload",
        action="append",
        choices=(*WORKLOADS, ALL),
        help="a workload to run; repeatable; default: all",
    )
    parser.add_argument(
        "--n",
        type=_positive_int,
        help="force one size for every sized workload (tasks, children, chains, samples)",
    )
    parser.add_argument(
        "--repeat", type=_positive_int, help="samples per case and backend (default 3; smoke 1)"
    )
    parser.add_argument(
        "--sqlite-synchronous",
        choices=get_args(SqliteSynchronous),
        default="full",
        help="SQLite's PRAGMA synchronous: full (the library's default) or normal (the opt-in); "
        "default full",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes and one repeat: checks the harness runs"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"give up on one sample after this long (default {DEFAULT_TIMEOUT_S:.0f})",
    )
    parser.add_argument(
        "--postgres-admin-url",
        default=postgres_admin_url(),
        help="a PostgreSQL URL allowed to create databases "
        "(default: $DURABLE_TEST_POSTGRES_URL or the local server)",
    )
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _selected(chosen: Sequence[str] | None, everything: Sequence[str]) -> list[str]:
    if not chosen or ALL in chosen:
        return list(everything)
    return [name for name in everything if name in chosen]  # catalog order, no duplicates


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # The default action would leave the sample's database or file and its child processes
    # behind; unwinding with an exception instead can hang in the middle of an event loop.
    # So: remove them here, then leave at once.
    kill_children()
    remove_targets_in_use()
    os._exit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    backends: list[Backend] = [b for b in BACKENDS if b in _selected(args.backend, BACKENDS)]
    workloads = _selected(args.workload, list(WORKLOADS))
    repeat: int = args.repeat if args.repeat is not None else (1 if args.smoke else 3)
    scale = Scale(smoke=args.smoke, n=args.n)
    admin_url: str = args.postgres_admin_url
    synchronous: SqliteSynchronous = args.sqlite_synchronous

    started_at = datetime.now(UTC).isoformat()
    machine = machine_facts(admin_url)
    results: list[CaseResult] = []
    for workload in workloads:
        for case in WORKLOADS[workload](scale):
            for backend in backends:
                if backend in case.backends:
                    results.append(
                        _run_case(case, backend, repeat, args.timeout, admin_url, synchronous)
                    )

    # Other processes on a shared machine skew figures; the load at both ends tells the reader.
    machine["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    if "sqlite" in backends:
        print(f"SQLite: synchronous={synchronous.upper()}\n")
    print(format_table(results))
    if args.json is not None:
        settings: dict[str, JsonValue] = {
            "backends": list(backends),
            "workloads": workloads,
            "repeat": repeat,
            "smoke": args.smoke,
            "n": args.n,
            "timeout_s": args.timeout,
            "sqlite_synchronous": synchronous,
            "argv": list(sys.argv[1:] if argv is None else argv),
        }
        report = document(
            results,
            settings=settings,
            machine=machine,
            started_at=started_at,
            finished_at=datetime.now(UTC).isoformat(),
        )
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.json}", file=sys.stderr)
    return 1 if any(result.error is not None for result in results) else 0


def _run_case(
    case: Case,
    backend: Backend,
    repeat: int,
    timeout_s: float,
    admin_url: str,
    synchronous: SqliteSynchronous,
) -> CaseResult:
    """``repeat`` samples, each on a fresh target; the first failure ends the case."""
    samples: list[Sample] = []
    for index in range(1, repeat + 1):
        label = f"{case.name} on {backend} [{index}/{repeat}]"
        print(f"{label} ...", file=sys.stderr, flush=True)
        gc.collect()  # start each sample without the previous one's garbage
        began = time.perf_counter()
        try:
            with fresh_target(backend, admin_url, synchronous) as target:
                sample = case.measure(SampleContext(target, timeout_s))
        except Exception as error:
            print(f"{label} FAILED:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
            return CaseResult(case, backend, samples, f"{type(error).__name__}: {error}")
        values = ", ".join(f"{key}={format_number(v)}" for key, v in sample.values.items())
        elapsed = time.perf_counter() - began
        print(f"{label} {values} ({elapsed:.1f} s)", file=sys.stderr, flush=True)
        samples.append(sample)
    return CaseResult(case, backend, samples)
