"""Opening a workload's storage from a target URL, the same way a user would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from durable_execution import DurableStorage, open_storage


@asynccontextmanager
async def open_bench_storage(url: str) -> AsyncIterator[DurableStorage]:
    """``open_storage(url)`` with the library's defaults: migrated on open, closed on exit.

    One place to change should the harness ever need non-default storage options.
    """
    async with open_storage(url) as storage:
        yield storage
