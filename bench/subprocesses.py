"""Harness child processes (W6 workers, memory probes): started so that they can import what we
can, and tracked so that a harness stopped by SIGTERM takes them down with it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

_running: set[subprocess.Popen[str]] = set()


def repo_root() -> Path:
    """The directory that holds the ``bench`` package."""
    return Path(__file__).resolve().parents[1]


def child_environment() -> dict[str, str]:
    """This process's environment, with the repository root on ``PYTHONPATH``.

    A child started with ``python -m bench.…`` must import ``bench`` from the repository root
    and ``durable_execution`` the way this process does (installed, or through the inherited
    ``PYTHONPATH``).
    """
    env = dict(os.environ)
    parts = [str(repo_root()), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(part for part in parts if part)
    return env


@contextmanager
def child_process(
    module: str, args: Sequence[str], *, stdin: bool = False, stderr: bool = False
) -> Iterator[subprocess.Popen[str]]:
    """``python -m module args…`` with a text stdout pipe (and stdin/stderr pipes if asked;
    otherwise no input and the harness's stderr). Killed on exit if still running."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if stderr else None,
        text=True,
        cwd=repo_root(),
        env=child_environment(),
    )
    _running.add(process)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()  # reaps it and closes the pipes
        _running.discard(process)


def kill_children() -> None:
    """Kill every child still running (for a harness that must exit at once)."""
    for process in list(_running):
        if process.poll() is None:
            process.kill()
