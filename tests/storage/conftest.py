"""Fixtures of the storage contract suite: every test runs on memory, SQLite and PostgreSQL.

Each backend is opened through ``open_storage`` on a fresh database (a new SQLite file, a new
PostgreSQL schema), with migrations applied, and closed when the test ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from durable_execution.storage import DurableStorage, open_storage

from ._backends import BACKENDS, SQL_BACKENDS, storage_url


@pytest.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest) -> AsyncIterator[DurableStorage]:
    async with open_storage(storage_url(request, request.param)) as opened:
        yield opened


@pytest.fixture(params=SQL_BACKENDS)
def sql_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.fixture
async def sql_storage(
    request: pytest.FixtureRequest, sql_backend: str
) -> AsyncIterator[DurableStorage]:
    async with open_storage(storage_url(request, sql_backend)) as opened:
        yield opened
