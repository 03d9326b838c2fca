"""One storage read for the fallback polls of every waiting handle.

A handle learns about executions this process finishes from the in-process notifier; it polls
storage only to see work finished by other processes. Polled one handle at a time, N waiting
handles cost N full-row reads per polling interval, which saturated the event loop and the
connection pool at a few thousand handles. Here every poll asked within a short window joins
one ids-only query per chunk of executions instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final

from durable_execution._transactions import TransactionRunner
from durable_execution.model import FINISHED_STATUSES
from durable_execution.storage.types import DurableStorageTx, WhereByExecutionIds

# Polls asked within this window share a read; small next to any polling interval.
COALESCE_WINDOW_S: Final = 0.02
# Ids per query: well under SQLite's bound-variable limit.
CHUNK_SIZE: Final = 500


class FinishedPoller:
    def __init__(self, transactions: TransactionRunner) -> None:
        self._transactions = transactions
        self._pending: dict[str, list[asyncio.Future[bool]]] = {}
        self._flush_scheduled = False
        self._flushes: set[asyncio.Task[None]] = set()

    async def is_finished(self, execution_id: str) -> bool:
        """Whether ``execution_id`` has a finished status now (False if it does not exist)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._pending.setdefault(execution_id, []).append(future)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_later(COALESCE_WINDOW_S, self._start_flush)
        return await future

    def _start_flush(self) -> None:
        task = asyncio.get_running_loop().create_task(self._flush())
        self._flushes.add(task)  # keep a reference until it is done
        task.add_done_callback(self._flushes.discard)

    async def _flush(self) -> None:
        batch, self._pending, self._flush_scheduled = self._pending, {}, False
        ids = list(batch)
        try:
            finished: set[str] = set()
            for start in range(0, len(ids), CHUNK_SIZE):
                finished.update(
                    await self._transactions.run(_finished_ids(ids[start : start + CHUNK_SIZE]))
                )
        except Exception as error:
            for futures in batch.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(error)
            return
        for execution_id, futures in batch.items():
            for future in futures:
                if not future.done():  # its waiter may have been cancelled meanwhile
                    future.set_result(execution_id in finished)


def _finished_ids(chunk: list[str]) -> Callable[[DurableStorageTx], Awaitable[list[str]]]:
    async def read(tx: DurableStorageTx) -> list[str]:
        return await tx.get_task_execution_ids(
            WhereByExecutionIds(chunk, statuses=FINISHED_STATUSES)
        )

    return read
