"""Fixtures of the executor scenario suite.

Every scenario runs once per storage backend. A backend is one entry of ``STORAGE_FACTORIES``:
a name mapped to a function that, given the pytest request, opens a fresh, empty storage as an
async context manager and closes it afterwards. The factory receives the request so that a
backend that needs a database can pull it from a fixture lazily (``request.getfixturevalue``),
and only when that backend is the one under test: memory, SQLite (a fresh file per test) and
PostgreSQL (a fresh schema per test), the SQL ones opened and migrated by ``open_storage``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Unpack

import pytest

from durable_execution import DurableExecutor
from durable_execution.storage import DurableStorage, InMemoryStorage, open_storage

from ._support import ExecutorOptions, MakeExecutor

StorageFactory = Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[DurableStorage]]


@asynccontextmanager
async def _memory_storage(request: pytest.FixtureRequest) -> AsyncIterator[DurableStorage]:
    del request  # an in-memory storage needs nothing from other fixtures
    yield InMemoryStorage()


@asynccontextmanager
async def _sqlite_storage(request: pytest.FixtureRequest) -> AsyncIterator[DurableStorage]:
    path = request.getfixturevalue("sqlite_path")  # a fresh file per test
    async with open_storage(f"sqlite:///{path}") as storage:
        yield storage


@asynccontextmanager
async def _postgres_storage(request: pytest.FixtureRequest) -> AsyncIterator[DurableStorage]:
    url: str = request.getfixturevalue("postgres_url")  # a fresh schema per test
    async with open_storage(url) as storage:
        yield storage


STORAGE_FACTORIES: dict[str, StorageFactory] = {
    "memory": _memory_storage,
    "sqlite": _sqlite_storage,
    "postgresql": _postgres_storage,
}

# Most scenarios use a short idle sleep so that polling implementations still finish quickly;
# the reference's tests use the same value.
FAST_INTRA_BATCH_SLEEP_MS = 50


@pytest.fixture(params=sorted(STORAGE_FACTORIES))
async def storage(request: pytest.FixtureRequest) -> AsyncIterator[DurableStorage]:
    backend: str = request.param
    async with STORAGE_FACTORIES[backend](request) as opened:
        yield opened


@pytest.fixture
async def make_executor(storage: DurableStorage) -> AsyncIterator[MakeExecutor]:
    """Builds executors on the test's storage; every one is shut down when the test ends.

    Keyword arguments go to ``DurableExecutor``; ``start=False`` returns it unstarted.
    The idle sleep defaults to ``FAST_INTRA_BATCH_SLEEP_MS`` unless given.
    """
    made: list[DurableExecutor] = []

    async def make(*, start: bool = True, **options: Unpack[ExecutorOptions]) -> DurableExecutor:
        options.setdefault("background_process_intra_batch_sleep_ms", FAST_INTRA_BATCH_SLEEP_MS)
        executor = DurableExecutor(storage, **options)
        made.append(executor)
        if start:
            await executor.start()
        return executor

    yield make
    for executor in reversed(made):
        await executor.shutdown()


@pytest.fixture
async def executor(make_executor: MakeExecutor) -> DurableExecutor:
    """A started executor on the test's storage, shut down after the test."""
    return await make_executor()
