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
import time
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from durable_execution.errors import DurableExecutionError
from durable_execution.storage.errors import (
    DuplicateExecutionIdError,
    MalformedRowError,
    SchemaTooNewError,
    StorageClosedError,
)
from durable_execution.storage.sync_types import SyncStorage, SyncStorageTx
from durable_execution.storage.types import (
    DurableStorage,
    DurableStorageTx,
    SingleStatementStorage,
)

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
        self._single_statement = storage if isinstance(storage, SingleStatementStorage) else None

    @property
    def single_statement_capable(self) -> bool:
        """Whether ``run(single_statement=True)`` saves anything (``SingleStatementStorage``)."""
        return self._single_statement is not None

    async def run(
        self,
        work: Callable[[DurableStorageTx], Awaitable[_T]],
        *,
        again: Callable[[DurableStorageTx], Awaitable[_T]] | None = None,
        single_statement: bool = False,
    ) -> _T:
        """Run ``work`` in a transaction, retrying transient failures; return its result.

        A transient failure after ``work`` ran may have struck after the server received
        COMMIT (the connection dropped before the reply; a disk error at commit): the outcome is
        unknown. ``work`` that is not safe to repeat passes ``again``, which retries run instead
        of ``work`` once ``work`` has been started: it must first find out what is stored (an
        insert finds its own rows, and does not insert them twice or fail as a duplicate).

        ``single_statement``: ``work`` runs exactly one statement, so a storage that can
        (``SingleStatementStorage``) runs its first attempt without BEGIN and COMMIT; retries
        always get a full transaction (``again`` may read before it writes).
        """
        started = False

        async def attempt(tx: DurableStorageTx) -> _T:
            nonlocal started
            if started and again is not None:
                return await again(tx)
            started = True
            return await work(tx)

        attempt_number = 1
        while True:
            try:
                single = self._single_statement if single_statement and not started else None
                async with (
                    self.storage.transaction() if single is None else single.single_statement()
                ) as tx:
                    return await attempt(tx)
            except Exception as error:
                if attempt_number >= MAX_ATTEMPTS or not is_transient(error):
                    raise
                self._logger.warning(
                    "Transaction failed (attempt %d of %d), retrying: %r",
                    attempt_number,
                    MAX_ATTEMPTS,
                    error,
                )
                await asyncio.sleep(jittered(RETRY_BASE_DELAY_S * attempt_number))
                attempt_number += 1


def run_sync(
    storage: SyncStorage,
    logger: logging.Logger,
    work: Callable[[SyncStorageTx], _T],
    *,
    again: Callable[[SyncStorageTx], _T] | None = None,
) -> _T:
    """:meth:`TransactionRunner.run` for a ``SyncClient``: the same retries, pauses and
    ``again`` rule, on the calling thread."""
    attempt_number = 1
    started = False
    while True:
        try:
            with storage.transaction() as tx:
                if started and again is not None:
                    return again(tx)
                started = True
                return work(tx)
        except Exception as error:
            if attempt_number >= MAX_ATTEMPTS or not is_transient(error):
                raise
            logger.warning(
                "Transaction failed (attempt %d of %d), retrying: %r",
                attempt_number,
                MAX_ATTEMPTS,
                error,
            )
            time.sleep(jittered(RETRY_BASE_DELAY_S * attempt_number))
            attempt_number += 1
