"""Facts about the machine and software a run measured, stored next to its figures.

Figures mean little without them: two cores or sixteen, which PostgreSQL with which commit
settings, which commit of the library. Every fact is best effort — a missing one is ``None``
(with the reason where there is one), never a failed run.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg

from bench.cases import JsonValue
from bench.subprocesses import repo_root

PACKAGES = ("durable-execution", "psycopg", "psycopg-binary", "psycopg-pool", "sqlite-utils")
POSTGRES_SETTINGS = ("fsync", "synchronous_commit", "shared_buffers", "max_connections")


def machine_facts(postgres_admin_url: str) -> dict[str, JsonValue]:
    """Everything worth recording, PostgreSQL's version and settings through the admin URL."""
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "ram_bytes": _ram_bytes(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_executable": sys.executable,
        "sqlite_version": sqlite3.sqlite_version,
        "postgresql": _postgres(postgres_admin_url),
        "packages": {name: _package_version(name) for name in PACKAGES},
        "git": _git(),
    }


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _ram_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024  # reported in kB
    except OSError:
        pass
    return None


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _postgres(admin_url: str) -> dict[str, JsonValue]:
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            facts: dict[str, JsonValue] = {
                "server_version": conn.info.parameter_status("server_version")
            }
            for setting in POSTGRES_SETTINGS:
                row = conn.execute("SELECT current_setting(%s)", (setting,)).fetchone()
                facts[setting] = None if row is None else str(row[0])
            return facts
    except psycopg.Error as error:
        return {"server_version": None, "error": str(error).strip()}


def _git() -> dict[str, JsonValue]:
    def git(*args: str) -> str | None:
        try:
            completed = subprocess.run(
                ["git", *args],
                cwd=repo_root(),
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return completed.stdout.strip()

    status = git("status", "--porcelain")
    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty": None if status is None else bool(status),
    }
