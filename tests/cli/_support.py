"""Driving the ``durable-execution`` command as a user does: a real process, real databases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).with_name("durable-execution")
APP_DIR = Path(__file__).parent
ENV_VARS = ("DURABLE_EXECUTION_DB", "DURABLE_EXECUTION_TABLE")


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI process: wide, colourless output and no inherited --db."""
    env = {key: value for key, value in os.environ.items() if key not in ENV_VARS}
    env.update(COLUMNS="200", NO_COLOR="1", TERM="dumb")
    env.update(extra)
    return env


def cli_command() -> list[str]:
    if not SCRIPT.exists():
        pytest.fail(
            f"the console script {SCRIPT} is missing; install the package: pip install -e .",
            pytrace=False,
        )
    return [str(SCRIPT)]


def cli(
    *args: str, cwd: Path | None = None, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cli_command(), *args],
        cwd=cwd,
        env=cli_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"  # absolute path: four slashes


class Worker:
    """A worker process whose log (stderr) goes to a file the test can read while it runs."""

    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if self.process.poll() is not None:
                pytest.fail(
                    f"worker exited ({self.process.returncode}) before logging {text!r}:\n"
                    f"{self.log()}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"worker did not log {text!r} within {timeout} s:\n{self.log()}")
            time.sleep(0.05)

    def signal(self, number: signal.Signals) -> None:
        self.process.send_signal(number)

    def wait(self, timeout: float = 30) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker still running after {timeout} s:\n{self.log()}")


@contextmanager
def running_worker(
    tmp_path: Path, db: str, *options: str, app: str = "cli_app:register"
) -> Iterator[Worker]:
    """A started worker (it logged "Worker started"); killed on exit if the test left it running."""
    log_path = tmp_path / f"worker-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*cli_command(), "worker", app, "--app-dir", str(APP_DIR), "--db", db, *options],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=cli_env(),
        )
    worker = Worker(process, log_path)
    try:
        worker.wait_for_log("Worker started")
        yield worker
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
