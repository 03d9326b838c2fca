"""Small assertions and helpers the scenario modules share."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol, TypedDict, TypeVar, Unpack

from tests._stored import all_records as stored_records

from durable_execution import (
    CompletedExecution,
    DurableExecutor,
    ExecutionErrorInfo,
    Serializer,
    TaskExecution,
    TaskHandle,
)
from durable_execution.storage import DurableStorage, TaskExecutionRecord

OutputT = TypeVar("OutputT")

# The 56-character id alphabet: digits and letters without the look-alikes I, L, O, i, l, o.
ID_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz"
EXECUTION_ID_PATTERN: Final = re.compile(f"te_[{ID_ALPHABET}]{{24}}")

# Generous: scenarios normally finish in well under a second; this only bounds a hang.
WAIT_TIMEOUT_MS: Final = 30_000
# Handles may poll; a short interval keeps polling implementations from slowing the suite.
POLL_MS: Final = 20


def assert_execution_id(execution_id: str) -> None:
    assert len(execution_id) == 27, execution_id
    assert EXECUTION_ID_PATTERN.fullmatch(execution_id), execution_id


def assert_utc(moment: datetime | None) -> datetime:
    assert moment is not None
    assert moment.tzinfo is not None, f"{moment!r} is naive"
    assert moment.utcoffset() == UTC.utcoffset(None)
    return moment


def assert_finished_times(execution: TaskExecution[object]) -> None:
    """A finished execution that ran: started, finished, in that order, after creation."""
    assert execution.status not in ("ready", "running"), execution
    started_at = assert_utc(getattr(execution, "started_at", None))
    finished_at = assert_utc(getattr(execution, "finished_at", None))
    created_at = assert_utc(execution.created_at)
    assert created_at <= started_at <= finished_at, execution


def without_traceback(error: ExecutionErrorInfo | None) -> ExecutionErrorInfo:
    """``error`` without its traceback (it names this file's lines), to compare the rest."""
    assert error is not None
    return replace(error, traceback=None)


def assert_raised_here(error: ExecutionErrorInfo | None, last_line: str, source: str) -> None:
    """A stored traceback of an exception raised by a test's task: it starts at the task's own
    code (no frame of the runner or asyncio before it), shows ``source`` (the raising line) and
    ends with ``last_line``."""
    assert error is not None
    assert error.traceback is not None, error
    assert error.traceback.startswith("Traceback (most recent call last):\n"), error.traceback
    first_frame = error.traceback.splitlines()[1]
    assert "tests/executor" in first_frame, error.traceback
    assert source in error.traceback, error.traceback
    assert error.traceback.endswith(last_line + "\n"), error.traceback


async def wait_finished(
    handle: TaskHandle[OutputT], *, timeout_ms: int = WAIT_TIMEOUT_MS
) -> TaskExecution[OutputT]:
    return await handle.wait_and_get_finished_execution(
        polling_interval_ms=POLL_MS, timeout_ms=timeout_ms
    )


async def wait_completed(handle: TaskHandle[OutputT]) -> CompletedExecution[OutputT]:
    """Waits for the execution and insists that it completed; returns it narrowed."""
    execution = await wait_finished(handle)
    assert execution.status == "completed", execution
    assert execution.task_id == handle.task_id
    assert execution.execution_id == handle.execution_id
    assert_execution_id(execution.execution_id)
    assert_finished_times(execution)
    return execution


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]],
    *,
    timeout_s: float = 10.0,
    what: str = "condition",
) -> None:
    """Polls ``condition`` (sync or async) until it holds; fails the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        holds = condition()
        if not isinstance(holds, bool):
            holds = await holds
        if holds:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout_s} s")
        await asyncio.sleep(0.01)


async def all_records(storage: DurableStorage) -> list[TaskExecutionRecord]:
    """Every stored execution, in insertion order."""
    return await stored_records(storage)


async def get_record(storage: DurableStorage, execution_id: str) -> TaskExecutionRecord:
    async with storage.transaction() as tx:
        records = await tx.get_task_executions([execution_id])
    assert len(records) == 1, f"{execution_id}: {records}"
    return records[0]


class ExecutorOptions(TypedDict, total=False):
    """The keyword options of ``DurableExecutor`` that scenarios vary."""

    serializer: Serializer
    logger: logging.Logger
    expire_ms: int
    background_process_intra_batch_sleep_ms: int
    max_concurrent_task_executions: int
    max_serialized_size_bytes: int
    max_lease_expiries: int | None
    retention: timedelta | None
    queues: list[str] | None


class MakeExecutor(Protocol):
    async def __call__(
        self, *, start: bool = True, **options: Unpack[ExecutorOptions]
    ) -> DurableExecutor: ...


class RunCounter:
    """Counts calls of a run function, per key (task id by default)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def hit(self, key: str) -> int:
        self.counts[key] = self.counts.get(key, 0) + 1
        return self.counts[key]

    def total(self) -> int:
        return sum(self.counts.values())

    def __getitem__(self, key: str) -> int:
        return self.counts.get(key, 0)
