"""The transaction wrapper retries transient failures only."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from durable_execution._transactions import MAX_ATTEMPTS, TransactionRunner
from durable_execution.errors import DurableExecutionError
from durable_execution.storage import (
    DuplicateExecutionIdError,
    DurableStorageTx,
    InMemoryStorage,
)


class FlakyStorage:
    """A real in-memory storage whose first ``failures`` transactions raise ``error``."""

    def __init__(self, error: Exception, failures: int) -> None:
        self.inner = InMemoryStorage()
        self.error = error
        self.failures = failures
        self.attempts = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DurableStorageTx]:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise self.error
        async with self.inner.transaction() as tx:
            yield tx


async def _read(tx: DurableStorageTx) -> list[str]:
    return await tx.get_finished_task_execution_ids(["te_missing"])


def runner(storage: FlakyStorage) -> TransactionRunner:
    return TransactionRunner(storage, logging.getLogger("test"))


async def test_transient_errors_are_retried() -> None:
    storage = FlakyStorage(ConnectionError("lost"), failures=MAX_ATTEMPTS - 1)
    assert await runner(storage).run(_read) == []
    assert storage.attempts == MAX_ATTEMPTS


async def test_persistent_transient_errors_surface_after_the_retries() -> None:
    storage = FlakyStorage(ConnectionError("lost"), failures=100)
    with pytest.raises(ConnectionError, match="lost"):
        await runner(storage).run(_read)
    assert storage.attempts == MAX_ATTEMPTS


async def test_retryable_library_errors_are_retried() -> None:
    storage = FlakyStorage(DurableExecutionError("conflict", is_retryable=True), failures=1)
    assert await runner(storage).run(_read) == []
    assert storage.attempts == 2


@pytest.mark.parametrize(
    "error",
    [DurableExecutionError("final", is_retryable=False), DuplicateExecutionIdError(["te_x"])],
)
async def test_deterministic_errors_are_tried_once(error: Exception) -> None:
    storage = FlakyStorage(error, failures=100)
    with pytest.raises(type(error)):
        await runner(storage).run(_read)
    assert storage.attempts == 1
