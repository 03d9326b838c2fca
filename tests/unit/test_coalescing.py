"""Concurrent requests of one kind share a transaction; one bad request fails only itself."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from durable_execution._coalescing import Coalescer
from durable_execution._transactions import MAX_ATTEMPTS, TransactionRunner
from durable_execution.errors import DurableExecutionError
from durable_execution.storage import DurableStorageTx

from ._support import CountingStorage

OUTAGE = 999


class Doubler:
    """Doubles each item; remembers the batches; refuses negative items (permanently) and
    ``OUTAGE`` (transiently: the storage is down)."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    async def __call__(self, tx: DurableStorageTx, items: Sequence[int]) -> list[int]:
        del tx
        self.batches.append(list(items))
        if OUTAGE in items:
            raise DurableExecutionError("the storage is down", is_retryable=True)
        if any(item < 0 for item in items):
            raise DurableExecutionError(f"negative item in {list(items)}", is_retryable=False)
        return [item * 2 for item in items]


def make(max_batch: int = 100) -> tuple[CountingStorage, Doubler, Coalescer[int, int]]:
    storage = CountingStorage()
    work = Doubler()
    transactions = TransactionRunner(storage, logging.getLogger("test"))
    return storage, work, Coalescer(transactions, work, max_batch=max_batch)


async def test_a_lone_request_runs_at_once_in_its_own_transaction() -> None:
    storage, work, coalescer = make()
    assert await coalescer.submit(21) == 42
    assert work.batches == [[21]]
    assert storage.transactions == 1


async def test_concurrent_requests_share_transactions_and_keep_their_results() -> None:
    storage, work, coalescer = make()
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(200)))
    assert results == [2 * i for i in range(200)]
    # All are queued before the first transaction starts: batches of at most 100, in order.
    assert work.batches == [list(range(100)), list(range(100, 200))]
    assert storage.transactions == 2


async def test_a_failing_request_fails_only_its_own_caller() -> None:
    _, work, coalescer = make()
    first = asyncio.ensure_future(coalescer.submit(0))
    await asyncio.sleep(0)  # the first batch starts; the next three queue behind it
    rest = [asyncio.ensure_future(coalescer.submit(item)) for item in (1, -1, 3)]
    assert await first == 0
    outcomes = await asyncio.gather(*rest, return_exceptions=True)
    assert outcomes[0] == 2
    assert outcomes[2] == 6
    assert isinstance(outcomes[1], DurableExecutionError)
    assert "[-1]" in str(outcomes[1])  # the error of its own request, not of the batch
    assert work.batches == [[0], [1, -1, 3], [1], [-1], [3]]


async def test_a_transient_failure_fails_the_whole_batch_without_one_by_one_retries() -> None:
    _, work, coalescer = make()
    first = asyncio.ensure_future(coalescer.submit(0))
    await asyncio.sleep(0)
    rest = [asyncio.ensure_future(coalescer.submit(item)) for item in (1, OUTAGE, 3)]
    assert await first == 0
    outcomes = await asyncio.gather(*rest, return_exceptions=True)
    assert all(isinstance(outcome, DurableExecutionError) for outcome in outcomes), outcomes
    # The transaction runner's own attempts, and no solo retries that would stretch an outage.
    assert work.batches == [[0]] + [[1, OUTAGE, 3]] * MAX_ATTEMPTS


async def test_a_caller_cancelled_before_its_batch_starts_is_dropped_from_it() -> None:
    _, work, coalescer = make()
    first = asyncio.ensure_future(coalescer.submit(1))
    await asyncio.sleep(0)
    doomed = asyncio.ensure_future(coalescer.submit(2))
    kept = asyncio.ensure_future(coalescer.submit(3))
    await asyncio.sleep(0)
    doomed.cancel()
    assert await first == 2
    assert await kept == 6
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert work.batches == [[1], [3]]


async def test_wait_idle_returns_once_everything_submitted_is_done() -> None:
    _, work, coalescer = make(max_batch=10)
    pending = [asyncio.ensure_future(coalescer.submit(i)) for i in range(35)]
    await asyncio.sleep(0)
    await coalescer.wait_idle()
    assert all(future.done() for future in pending)
    assert sum(len(batch) for batch in work.batches) == 35
    await coalescer.wait_idle()  # idle already: returns at once
