"""A closed storage fails fast instead of being retried forever."""

from __future__ import annotations

import asyncio

import pytest

from durable_execution import DurableExecutor, TaskContext, open_storage
from durable_execution.storage import StorageClosedError


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{request.getfixturevalue('sqlite_path')}"
    url: str = request.getfixturevalue("postgres_url")
    return url


async def test_waiting_on_a_closed_storage_raises_instead_of_spinning(db_url: str) -> None:
    async with open_storage(db_url) as storage:
        executor = DurableExecutor(storage)  # never started: the execution stays ready

        def run(ctx: TaskContext, _: None) -> str:
            return "never runs"

        handle = await executor.enqueue_task(executor.task(id="t", timeout_ms=1000, run=run))
    # The storage is closed now. Before StorageClosedError was permanent, the handle logged
    # "cannot read it yet" and polled for ever (PoolClosed on PostgreSQL).
    with pytest.raises(StorageClosedError, match="storage is closed"):
        await asyncio.wait_for(handle.wait_and_get_finished_execution(polling_interval_ms=10), 10)
    with pytest.raises(StorageClosedError):
        await asyncio.wait_for(
            executor.enqueue_task(executor.task(id="u", timeout_ms=1, run=run)), 10
        )
