"""Every program in examples/ runs as a user runs it, on SQLite and on PostgreSQL.

(The Makefile's typecheck target runs ``mypy --strict`` over examples/ as well.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCRIPT = Path(sys.executable).with_name("durable-execution")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'examples.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def run_example(name: str, *args: str, cwd: Path) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("quickstart.py", "Hello, world!\n"),
        ("fan_out.py", "3 documents, 13 words\n"),
        ("pipeline.py", "stored 5 values, largest 8\n"),
    ],
)
def test_example_prints_its_result(name: str, expected: str, db_url: str, tmp_path: Path) -> None:
    assert run_example(name, db_url, cwd=tmp_path) == expected


def test_quickstart_defaults_to_a_sqlite_file_in_the_current_directory(tmp_path: Path) -> None:
    assert run_example("quickstart.py", cwd=tmp_path) == "Hello, world!\n"
    assert (tmp_path / "quickstart.db").exists()


def test_worker_app_runs_in_a_worker(db_url: str, tmp_path: Path) -> None:
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log_file:
        worker = subprocess.Popen(
            [
                *(str(SCRIPT), "worker", "worker_app:register", "--app-dir", str(EXAMPLES)),
                *("--db", db_url, "--poll-interval-ms", "50"),
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith("DURABLE_EXECUTION_")},
        )
    try:
        deadline = time.monotonic() + 30
        while "Worker started" not in log_path.read_text():
            assert worker.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        out = run_example("worker_app.py", "--db", db_url, "Ada", "Grace", cwd=tmp_path)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, log_path.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    lines = out.splitlines()
    assert [line.split()[:2] for line in lines[:2]] == [["enqueued", "welcome"]] * 2
    assert [line.split(": ", 1)[1] for line in lines[2:]] == ["Welcome, Ada!", "Welcome, Grace!"]
    log = log_path.read_text()
    assert "worker_app: Welcomed Ada" in log
    assert "worker_app: Welcomed Grace" in log
    assert "Worker stopped" in log
