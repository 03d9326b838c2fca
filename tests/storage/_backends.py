"""The backends the storage suite runs on, and fresh database URLs for each."""

from __future__ import annotations

from pathlib import Path

import pytest

BACKENDS = ("memory", "sqlite", "postgresql")
SQL_BACKENDS = ("sqlite", "postgresql")


def storage_url(request: pytest.FixtureRequest, backend: str) -> str:
    """A URL of a fresh, empty database of ``backend`` (fixtures pulled lazily)."""
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        path: Path = request.getfixturevalue("sqlite_path")
        return f"sqlite:///{path}"  # the path is absolute, so this shows four slashes
    url: str = request.getfixturevalue("postgres_url")
    return url
