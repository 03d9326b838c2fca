"""A storage that fails: transient errors are retried once, non-retryable ones are not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Literal

import pytest

from durable_execution import DurableExecutionError, DurableExecutor, TaskContext
from durable_execution.storage import DurableStorage, DurableStorageTx

from ._support import all_records, wait_completed

FailAt = Literal["call", "enter"]


class FlakyStorage:
    """A real storage whose next ``failures`` transactions fail to open with ``error``.

    ``fail_at="call"`` raises from ``transaction()`` itself, ``"enter"`` when the transaction is
    entered (as a lost connection would). It wraps, rather than imitates, a storage: everything
    that does get through is real.
    """

    def __init__(self, inner: DurableStorage, error: Exception, fail_at: FailAt) -> None:
        self.inner = inner
        self.error = error
        self.fail_at = fail_at
        self.failures = 0
        self.attempts = 0

    def transaction(self) -> AbstractAsyncContextManager[DurableStorageTx]:
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1
            if self.fail_at == "call":
                raise self.error
            return self._failing()
        return self.inner.transaction()

    @asynccontextmanager
    async def _failing(self) -> AsyncIterator[DurableStorageTx]:
        raise self.error
        yield  # pragma: no cover - makes this an async generator


def _run(ctx: TaskContext, _: None) -> str:
    return "ok"


@pytest.fixture
async def flaky_executor(
    storage: DurableStorage, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[DurableExecutor, FlakyStorage]]:
    fail_at: FailAt = getattr(request, "param", "call")
    flaky = FlakyStorage(storage, RuntimeError("storage is down"), fail_at)
    # Not started: enqueueing is the only storage traffic, so every attempt is counted here.
    executor = DurableExecutor(flaky, background_process_intra_batch_sleep_ms=50)
    yield executor, flaky
    await executor.shutdown()


FAIL_MODES = pytest.mark.parametrize("flaky_executor", ["call", "enter"], indirect=True)


@FAIL_MODES
async def test_plain_storage_error_is_retried_then_surfaces(
    flaky_executor: tuple[DurableExecutor, FlakyStorage], storage: DurableStorage
) -> None:
    executor, flaky = flaky_executor
    task = executor.task(id="test", timeout_ms=1000, run=_run)
    flaky.failures = 1_000
    with pytest.raises(RuntimeError, match=r"^storage is down$"):
        await executor.enqueue_task(task)
    assert flaky.attempts >= 2
    assert await all_records(storage) == []


@FAIL_MODES
async def test_non_retryable_error_is_tried_exactly_once(
    flaky_executor: tuple[DurableExecutor, FlakyStorage], storage: DurableStorage
) -> None:
    executor, flaky = flaky_executor
    task = executor.task(id="test", timeout_ms=1000, run=_run)
    flaky.error = DurableExecutionError("permanently broken", is_retryable=False)
    flaky.failures = 1_000
    with pytest.raises(DurableExecutionError, match=r"^permanently broken$") as raised:
        await executor.enqueue_task(task)
    assert raised.value is flaky.error
    assert flaky.attempts == 1
    assert await all_records(storage) == []


@FAIL_MODES
async def test_retryable_durable_error_is_retried(
    flaky_executor: tuple[DurableExecutor, FlakyStorage],
) -> None:
    executor, flaky = flaky_executor
    task = executor.task(id="test", timeout_ms=1000, run=_run)
    flaky.error = DurableExecutionError("briefly broken", is_retryable=True)
    flaky.failures = 1_000
    with pytest.raises(DurableExecutionError, match=r"^briefly broken$"):
        await executor.enqueue_task(task)
    assert flaky.attempts >= 2


@FAIL_MODES
async def test_one_transient_failure_is_absorbed(
    flaky_executor: tuple[DurableExecutor, FlakyStorage], storage: DurableStorage
) -> None:
    executor, flaky = flaky_executor
    task = executor.task(id="test", timeout_ms=1000, run=_run)
    flaky.failures = 1
    handle = await executor.enqueue_task(task)
    assert flaky.attempts == 2
    [record] = await all_records(storage)
    assert record.execution_id == handle.execution_id

    await executor.start()
    execution = await wait_completed(handle)
    assert execution.output == "ok"
