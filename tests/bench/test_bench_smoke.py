"""The benchmark harness runs end to end in smoke mode and writes a complete JSON report.

Runs ``python -m bench --smoke`` in a subprocess — exactly what a user or CI types — against
the in-memory backend, a SQLite file and the real PostgreSQL server, then checks the report's
shape: every workload on every backend it applies to, each with positive figures and
min <= median <= max, machine facts filled in, floor ratios computed. Timings are never
asserted: they depend on the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SQL_BACKENDS = {"sqlite", "postgresql"}
ALL_BACKENDS = {"memory", *SQL_BACKENDS}

# The cases smoke mode runs: (case name, backends it applies to). Written out rather than
# imported, so that a case silently disappearing from the harness fails this test.
EXPECTED_CASES: dict[str, set[str]] = {
    "W1 throughput n=50": ALL_BACKENDS,
    "W1 throughput n=50 batch": ALL_BACKENDS,
    "floor batch=100 n=50": SQL_BACKENDS,
    "floor batch=1 n=50": SQL_BACKENDS,
    "W2 fan-out children=20": ALL_BACKENDS,
    "W3 chains k=5": ALL_BACKENDS,
    "W4 latency samples=5": ALL_BACKENDS,
    "W5 reference workload": ALL_BACKENDS,
    "W6 scale-out processes=1 n=200": SQL_BACKENDS,
    "W6 scale-out processes=2 n=200": SQL_BACKENDS,
    "rss W1 n=200": ALL_BACKENDS,
    "retained W1 n=200": ALL_BACKENDS,
    "W7 soak n=2000": SQL_BACKENDS,
    "W8 sync enqueue n=20": SQL_BACKENDS,
}
METRICS_BY_CASE_PREFIX: dict[str, set[str]] = {
    "W1": {"tasks_per_s", "enqueue_per_s", "closed_per_s"},
    "floor": {"rows_per_s"},
    "W2": {"seconds"},
    "W3": {"seconds"},
    "W4": {"p50_ms", "p95_ms", "max_ms"},
    "W5": {"seconds"},
    "W6": {"tasks_per_s", "closed_per_s"},
    "rss": {"peak_rss_mib", "rss_growth_per_task_bytes"},
    "retained": {"retained_per_execution_bytes"},
    "W7": {"tasks_per_s", "claim_p50_ms", "claim_p99_ms", "table_mib"},
    "W8": {
        "enqueue_p50_ms",
        "enqueue_p95_ms",
        "enqueue_mean_ms",
        "threads_per_s",
        "asyncio_run_ms",
        "floor_ms",
    },
}

# Any: the report is parsed JSON; the test checks its shape field by field.
Report = dict[str, Any]


@pytest.fixture(scope="module")
def smoke_report(
    postgres_admin_url: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Report, str]:
    """The JSON report and the printed table of one smoke run on all three backends."""
    json_path = tmp_path_factory.mktemp("bench") / "bench.json"
    env = dict(os.environ, DURABLE_TEST_POSTGRES_URL=postgres_admin_url)
    env["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(REPO_ROOT), str(REPO_ROOT / "src"), env.get("PYTHONPATH")) if part
    )
    command = [sys.executable, "-m", "bench", "--smoke", "--json", str(json_path)]
    for backend in sorted(ALL_BACKENDS):
        command += ["--backend", backend]
    completed = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert completed.returncode == 0, (
        f"python -m bench --smoke exited {completed.returncode}\n"
        f"stdout:\n{completed.stdout}\nstderr:\n{completed.stderr[-5000:]}"
    )
    report: Report = json.loads(json_path.read_text())
    return report, completed.stdout


def test_every_case_ran_on_every_backend_it_applies_to(smoke_report: tuple[Report, str]) -> None:
    report, _ = smoke_report
    ran: dict[str, set[str]] = {}
    for run in report["runs"]:
        assert run["ok"], f"{run['case']} on {run['backend']} failed: {run['error']}"
        assert len(run["samples"]) == 1  # smoke: one repeat
        ran.setdefault(run["case"], set()).add(run["backend"])
    assert ran == EXPECTED_CASES


def test_figures_are_positive_and_ordered(smoke_report: tuple[Report, str]) -> None:
    report, _ = smoke_report
    seen: dict[tuple[str, str], set[str]] = {}
    for figure in report["figures"]:
        assert figure["unit"]
        assert isinstance(figure["higher_is_better"], bool)
        assert len(figure["samples"]) == 1
        assert 0 < figure["min"] <= figure["median"] <= figure["max"], figure
        seen.setdefault((figure["case"], figure["backend"]), set()).add(figure["metric"])
    for case, backends in EXPECTED_CASES.items():
        prefix = case.split(" ", 1)[0]
        for backend in backends:
            assert seen[(case, backend)] == METRICS_BY_CASE_PREFIX[prefix], (case, backend)


def test_floor_ratios_cover_both_sql_backends(smoke_report: tuple[Report, str]) -> None:
    report, _ = smoke_report
    ratios = report["floor_ratios"]
    covered = {(ratio["backend"], ratio["floor_batch"], ratio["w1_metric"]) for ratio in ratios}
    assert covered == {
        (backend, batch, metric)
        for backend in SQL_BACKENDS
        for batch in (1, 100)
        for metric in ("tasks_per_s", "closed_per_s")
    }
    for ratio in ratios:
        assert ratio["ratio"] == pytest.approx(ratio["w1_median"] / ratio["floor_median"])


def test_machine_facts_and_settings_are_recorded(smoke_report: tuple[Report, str]) -> None:
    report, _ = smoke_report
    assert report["schema"] == 1
    settings = report["settings"]
    assert settings["smoke"] is True
    assert settings["repeat"] == 1
    assert set(settings["backends"]) == ALL_BACKENDS
    machine = report["machine"]
    assert machine["cpu_count"] >= 1
    assert machine["ram_bytes"] > 0
    assert machine["os"]
    assert machine["python"].startswith("CPython 3.")
    assert machine["sqlite_version"].count(".") == 2
    assert machine["postgresql"]["server_version"]
    assert machine["packages"]["psycopg"]
    assert set(machine["git"]) == {"commit", "dirty"}


def test_table_lists_every_case(smoke_report: tuple[Report, str]) -> None:
    _, table = smoke_report
    for case in EXPECTED_CASES:
        assert case in table
    assert "fraction of the floor" in table
    assert "FAILED" not in table


def test_the_soak_reports_a_curve_with_size_and_bloat(smoke_report: tuple[Report, str]) -> None:
    report, _ = smoke_report
    soaks = [run for run in report["runs"] if run["case"].startswith("W7")]
    assert {run["backend"] for run in soaks} == SQL_BACKENDS
    for run in soaks:
        info = run["samples"][0]["info"]
        curve = info["curve"]
        assert [point["executions"] for point in curve] == [200 * i for i in range(1, 11)]
        bloat = "dead_tuples" if run["backend"] == "postgresql" else "freelist_pages"
        for point in curve:
            assert point["tasks_per_s"] > 0
            assert point["claims"] > 0
            assert 0 < point["claim_p50_ms"] <= point["claim_p99_ms"]
            assert point["size_mib"] > 0
            assert point["rows"] >= 0
            assert point[bloat] >= 0


def test_the_scale_out_reports_claims_per_process_and_server_waits(
    smoke_report: tuple[Report, str],
) -> None:
    report, _ = smoke_report
    runs = [run for run in report["runs"] if run["case"].startswith("W6")]
    assert {run["backend"] for run in runs} == SQL_BACKENDS
    for run in runs:
        info = run["samples"][0]["info"]
        processes = run["params"]["processes"]
        claims = info["claims_per_process"]
        assert len(claims) == processes
        # Every task was claimed by some process, and each claim took at least one row.
        assert sum(info["runs_per_process"]) == run["params"]["n"]
        assert sum(report_["claims"] - report_["empty_claims"] for report_ in claims) > 0
        for report_ in claims:
            # A process may only ever have found the queue empty (another took every row).
            assert (
                report_["mean_rows_per_nonempty_claim"] >= 1
                or report_["claims"] == report_["empty_claims"]
            )
        if run["backend"] == "postgresql":
            waits = info["postgres_waits"]
            assert waits["error"] is None
            assert waits["samples"] > 0
            # A smoke run may be over before a backend is caught mid-statement: shares may be
            # empty, but never more than the whole.
            shares = waits["active_wait_share"]
            assert all(0 < share <= 1 for share in shares.values())
            assert sum(shares.values()) <= 1.001
        else:
            assert "postgres_waits" not in info
