"""Batched paths: ``enqueue_tasks``, coalesced enqueues and result writes, handed-over records."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from durable_execution import (
    DurableExecutionError,
    DurableExecutionNotFoundError,
    DurableExecutor,
    TaskContext,
    TaskEnqueueOptions,
)
from durable_execution.storage import DurableStorage

from ._support import MakeExecutor, all_records, wait_completed, wait_finished


def _square(ctx: TaskContext, value: int) -> int:
    return value * value


def _checked_square(value: object) -> int:
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"not a natural number: {value!r}")
    return value


async def test_enqueue_tasks_returns_a_handle_per_input_in_order(
    executor: DurableExecutor,
) -> None:
    task = executor.task(id="square", timeout_ms=5000, run=_square)
    handles = await executor.enqueue_tasks(task, range(120))
    assert len({handle.execution_id for handle in handles}) == 120
    executions = await asyncio.gather(*(wait_completed(handle) for handle in handles))
    assert [execution.output for execution in executions] == [i * i for i in range(120)]


async def test_enqueue_tasks_applies_the_options_to_every_execution(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    task = executor.task(id="square", timeout_ms=5000, run=_square)
    handles = await executor.enqueue_tasks(
        task, [1, 2, 3], TaskEnqueueOptions(timeout_ms=1234, sleep_ms_before_run=0)
    )
    await asyncio.gather(*(wait_completed(handle) for handle in handles))
    records = await all_records(storage)
    assert sorted(record.timeout_ms for record in records) == [1234, 1234, 1234]


async def test_enqueue_tasks_of_nothing_stores_nothing(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    task = executor.task(id="square", timeout_ms=5000, run=_square)
    assert await executor.enqueue_tasks(task, []) == []
    assert await all_records(storage) == []


async def test_enqueue_tasks_with_one_bad_input_stores_none_of_them(
    make_executor: MakeExecutor, storage: DurableStorage
) -> None:
    executor = await make_executor(start=False)
    task = executor.validate_input(_checked_square).task(id="checked", timeout_ms=5000, run=_square)
    with pytest.raises(DurableExecutionError, match="not a natural number: -1"):
        await executor.enqueue_tasks(task, [1, 2, -1, 4])
    with pytest.raises(DurableExecutionError, match="timeout_ms"):
        await executor.enqueue_tasks(task, [1], TaskEnqueueOptions(timeout_ms=0))
    assert await all_records(storage) == []


async def test_enqueue_tasks_refuses_an_unregistered_task(
    executor: DurableExecutor, make_executor: MakeExecutor
) -> None:
    other = await make_executor(start=False)
    task = other.task(id="elsewhere", timeout_ms=5000, run=_square)
    with pytest.raises(DurableExecutionNotFoundError, match="elsewhere"):
        await executor.enqueue_tasks(task, [1])


async def test_concurrent_enqueues_and_results_all_land(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    # Coalesced: the enqueues share transactions, and so do the results of runs that finish
    # together; every caller still gets its own execution and output.
    task = executor.task(id="square", timeout_ms=5000, run=_square)
    handles = await asyncio.gather(*(executor.enqueue_task(task, i) for i in range(300)))
    executions = await asyncio.gather(*(wait_completed(handle) for handle in handles))
    assert [execution.output for execution in executions] == [i * i for i in range(300)]
    records = await all_records(storage)
    assert len(records) == 300
    assert {record.status for record in records} == {"completed"}


async def test_a_handle_woken_in_process_returns_what_is_stored(
    executor: DurableExecutor,
) -> None:
    # The executor hands the committed record to waiting handles instead of having them read
    # it back: what they return must equal a fresh read, field by field.
    def fail(ctx: TaskContext, value: int) -> int:
        raise DurableExecutionError(f"no {value}", is_retryable=False)

    square = executor.task(id="square", timeout_ms=5000, run=_square)
    failing = executor.task(id="fail", timeout_ms=5000, run=fail)
    handles = [await executor.enqueue_task(square, 7), await executor.enqueue_task(failing, 8)]
    for handle in handles:
        woken = await wait_finished(handle)
        fresh = await handle.get_execution()
        # Closing (which may have happened since) bumps updated_at, and only that.
        assert dataclasses.replace(woken, updated_at=fresh.updated_at) == fresh
        assert woken.updated_at <= fresh.updated_at
