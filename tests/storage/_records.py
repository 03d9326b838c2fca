"""Records for the storage tests, and small transaction helpers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from durable_execution.model import (
    ChildTaskError,
    ExecutionErrorInfo,
    ParentTaskRef,
    RetryOptions,
    TaskExecutionStatus,
    TaskRef,
)
from durable_execution.storage import (
    DurableStorage,
    DurableStorageTx,
    TaskExecutionRecord,
    TaskExecutionUpdate,
    WhereByExecutionIds,
)
from tests import _stored

# A fixed instant with a millisecond part, so that a lost millisecond shows up.
T0 = datetime(2025, 3, 4, 5, 6, 7, 891_000, tzinfo=UTC)
ERROR = ExecutionErrorInfo(error_type="generic", message="boom", is_retryable=True)


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def record(
    execution_id: str,
    *,
    status: TaskExecutionStatus = "ready",
    offset_ms: int = 0,
    **changes: object,
) -> TaskExecutionRecord:
    """A minimal record: every optional field absent, all times ``T0 + offset_ms``."""
    moment = at(offset_ms)
    base = TaskExecutionRecord(
        task_id="task",
        execution_id=execution_id,
        retry_options=RetryOptions(max_attempts=0),
        sleep_ms_before_run=0,
        timeout_ms=1000,
        run_input='"input"',
        status=status,
        start_at=moment,
        created_at=moment,
        updated_at=moment,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def full_record(execution_id: str) -> TaskExecutionRecord:
    """Every optional field set, with values that exercise the encoders."""
    plus_two = timezone(timedelta(hours=2))
    return TaskExecutionRecord(
        task_id="child-task",
        execution_id=execution_id,
        retry_options=RetryOptions(
            max_attempts=3, base_delay_ms=250, delay_multiplier=1.5, max_delay_ms=10_000
        ),
        sleep_ms_before_run=12,
        timeout_ms=86_400_000 * 30,  # beyond 32-bit milliseconds
        run_input='{"text": "h\\u00e9llo"}',
        status="waiting_for_finalize_task",
        # A non-UTC offset: stored as the same instant, read back in UTC.
        start_at=at(1).astimezone(plus_two),
        created_at=at(-5),
        updated_at=at(6),
        root_task=TaskRef(task_id="root-task", execution_id="te_root"),
        parent_task=ParentTaskRef(
            task_id="parent", execution_id="te_parent", is_finalize_task=True
        ),
        run_output='"run output"',
        output="ünïcödé output ✓",
        children_tasks_completed_count=2,
        children_tasks=(
            TaskRef(task_id="a", execution_id="te_a"),
            TaskRef(task_id="b", execution_id="te_b"),
        ),
        children_tasks_errors=(
            ChildTaskError(
                index=1,
                task_id="b",
                execution_id="te_b",
                error=ExecutionErrorInfo(
                    error_type="timed_out", message='bœm "quoted"\n', is_retryable=False
                ),
            ),
        ),
        finalize_task=TaskRef(task_id="fin", execution_id="te_fin"),
        finalize_task_error=ExecutionErrorInfo(
            error_type="cancelled", message="slow", is_retryable=True, is_internal=True
        ),
        error=ExecutionErrorInfo(error_type="not_found", message="", is_retryable=False),
        is_closed=True,
        needs_promise_cancellation=True,
        retry_attempts=4,
        started_at=at(2),
        finished_at=at(3),
        expires_at=at(4),
        version=7,
        rerun_of="te_original",
        queue="emails ✉",
        concurrency_key="customer-7 ✓",
        concurrency_limit=2**31 - 1,
        idempotency_key=f"key of {execution_id} ✓",
        priority=-3,
    )


async def insert(storage: DurableStorage, *records: TaskExecutionRecord) -> None:
    async with storage.transaction() as tx:
        await tx.insert_task_executions(list(records))


async def ids(storage: DurableStorage, execution_ids: Sequence[str]) -> list[str]:
    """The ids of the stored executions among ``execution_ids``, read by id in insertion order."""
    async with storage.transaction() as tx:
        return [r.execution_id for r in await tx.get_task_executions(execution_ids)]


async def read(storage: DurableStorage, execution_id: str) -> TaskExecutionRecord | None:
    async with storage.transaction() as tx:
        rows = await tx.get_task_executions([execution_id])
    assert len(rows) <= 1
    return rows[0] if rows else None


async def all_ids(storage: DurableStorage) -> list[str]:
    """Every stored execution id, sorted (read outside any transaction, see tests/_stored.py)."""
    return sorted(await _stored.all_ids(storage))


async def update_one(
    tx: DurableStorageTx, where: WhereByExecutionIds, update: TaskExecutionUpdate
) -> int:
    """One guarded update (a batch of one): the number of rows it changed."""
    (count,) = await tx.update_task_executions_each([(where, update)])
    return count
