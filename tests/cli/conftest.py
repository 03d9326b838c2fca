"""The CLI tests run against a fresh SQLite file and a fresh PostgreSQL schema alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._support import sqlite_url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database a CLI process can reach (the schema is not created)."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "cli.db")
    url: str = request.getfixturevalue("postgres_url")
    return url
