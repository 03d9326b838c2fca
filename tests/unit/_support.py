"""Builders shared by the unit tests of the executor's internals."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

from durable_execution import clock
from durable_execution._options import ExecutionOptions
from durable_execution._records import new_record
from durable_execution._runtime import ExecutorConfig, Runtime
from durable_execution._transactions import TransactionRunner
from durable_execution.model import RetryOptions
from durable_execution.serializer import CheckedSerializer, JsonSerializer
from durable_execution.storage import (
    DurableStorage,
    DurableStorageTx,
    InMemoryStorage,
    TaskExecutionRecord,
)

OPTIONS = ExecutionOptions(
    retry_options=RetryOptions(max_attempts=0), sleep_ms_before_run=0, timeout_ms=1000
)


def make_runtime(storage: DurableStorage) -> Runtime:
    logger = logging.getLogger("durable_execution.tests")
    return Runtime(
        transactions=TransactionRunner(storage, logger),
        serializer=CheckedSerializer(JsonSerializer(), 1_000_000),
        logger=logger,
        config=ExecutorConfig(
            expire_ms=300_000, intra_batch_sleep_ms=50, max_concurrent_task_executions=100
        ),
    )


def make_record(task_id: str, execution_id: str, **changes: object) -> TaskExecutionRecord:
    record = new_record(
        task_id=task_id,
        execution_id=execution_id,
        options=OPTIONS,
        run_input=JsonSerializer().serialize(None),
        now=clock.now(),
    )
    return replace(record, **changes)  # type: ignore[arg-type]


class CountingStorage:
    """A real in-memory storage that counts the transactions opened through it.

    Each transaction yields to the event loop once before its work, as a real backend's round
    trip would, so that concurrent callers can queue behind one in flight.
    """

    def __init__(self) -> None:
        self.inner = InMemoryStorage()
        self.transactions = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DurableStorageTx]:
        self.transactions += 1
        async with self.inner.transaction() as tx:
            await asyncio.sleep(0)
            yield tx
