"""Telemetry scenarios run on every backend, with the SDK's in-memory exporters installed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from durable_execution import DurableExecutor
from durable_execution.storage import DurableStorage, InMemoryStorage, open_storage

from ._providers import installed


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def storage(request: pytest.FixtureRequest) -> AsyncIterator[DurableStorage]:
    installed()
    if request.param == "memory":
        yield InMemoryStorage()
        return
    if request.param == "sqlite":
        path: Path = request.getfixturevalue("sqlite_path")  # a fresh file per test
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_url")  # a fresh schema per test
    async with open_storage(url) as opened:
        yield opened


@pytest.fixture
async def executor(storage: DurableStorage) -> AsyncIterator[DurableExecutor]:
    """An executor on the test's storage, started by the test once its tasks are registered."""
    executor = DurableExecutor(storage, background_process_intra_batch_sleep_ms=50)
    yield executor
    await executor.shutdown()
