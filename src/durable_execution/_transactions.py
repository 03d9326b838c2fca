"""Every storage access of the executor goes through :class:`TransactionRunner`.

A transaction that fails with a transient error is retried from the start after a short
jittered pause: lost connections, serialization failures and deadlocks of the SQL backends
resolve that way. Not transient: a non-retryable :class:`DurableExecutionError`, and the storage
errors that name a fact about the data rather than a passing condition — a duplicate id, a
malformed stored row (a poison row: reading it again will not fix it), a schema newer than the
code. Retrying those only delays the clear error and, in a background loop, stalls it.

Two retries, not the reference's one, because a PostgreSQL deadlock victim and a dropped pooled
connection can coincide.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from durable_execution.errors import DurableExecutionError
from durable_execution.storage.errors import (
    DuplicateExecutionIdError,
    MalformedRowError,
    StorageClosedError,
)
from durable_execution.storage.migrate import SchemaTooNewError
from durable_execution.storage.types import DurableStorage, DurableStorageTx

_T = TypeVar("_T")

MAX_ATTEMPTS: Final = 3
RETRY_BASE_DELAY_S: Final = 0.05


def jittered(seconds: float) -> float:
    """``seconds`` scaled by a uniform factor in [0.5, 1.5), so that peers do not move in step."""
    return seconds * (0.5 + random.random())


def is_transient(error: Exception) -> bool:
    if isinstance(error, DurableExecutionError):
        return error.is_retryable
    return not isinstance(
        error,
        DuplicateExecutionIdError | MalformedRowError | SchemaTooNewError | StorageClosedError,
    )


class TransactionRunner:
    def __init__(self, storage: DurableStorage, logger: logging.Logger) -> None:
        self.storage = storage
        self._logger = logger

    async def run(self, work: Callable[[DurableStorageTx], Awaitable[_T]]) -> _T:
        """Run ``work`` in a transaction, retrying transient failures; return its result."""
        attempt = 1
        while True:
            try:
                async with self.storage.transaction() as tx:
                    return await work(tx)
            except Exception as error:
                if attempt >= MAX_ATTEMPTS or not is_transient(error):
                    raise
                self._logger.warning(
                    "Transaction failed (attempt %d of %d), retrying: %r",
                    attempt,
                    MAX_ATTEMPTS,
                    error,
                )
                await asyncio.sleep(jittered(RETRY_BASE_DELAY_S * attempt))
                attempt += 1
