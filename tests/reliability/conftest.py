"""Fixtures shared by the reliability tests that run on both SQL backends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from durable_execution.storage import DurableStorage, open_storage

from ._private_pg_server import PrivatePostgres


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh SQLite file or PostgreSQL schema, as a URL (the schema is not created yet)."""
    if request.param == "sqlite":
        path: Path = request.getfixturevalue("sqlite_path")
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def storage(db_url: str) -> AsyncIterator[DurableStorage]:
    """The storage at ``db_url``, migrated, closed after the test."""
    async with open_storage(db_url) as opened:
        yield opened


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of the test module's own, which its tests may stop and start (never
    the shared cluster); destroyed after the module."""
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.destroy()
