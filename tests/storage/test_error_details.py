"""An error's exception type and traceback are stored on every backend, and rows written before
these fields existed still read."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from durable_execution.model import MAX_TRACEBACK_BYTES, ChildTaskError, ExecutionErrorInfo
from durable_execution.storage import (
    DurableStorage,
    MalformedRowError,
    TaskExecutionCancel,
    TaskExecutionUpdate,
    WhereByExecutionIds,
    open_storage,
)
from durable_execution.storage.error_json import error_json

from ._backends import storage_url
from ._records import at, full_record, insert, record, update_one

# As long as a stored traceback may be, with what JSON and both databases must escape or keep:
# quotes, backslashes, newlines, tabs, control characters, non-ASCII and an astral character.
_LINE = 'File "/app/π.py", line 1, in f\\n\t"quoted" \\\\ back\x01slash ✓ 😀\n'
_LONG_TRACEBACK = (_LINE * (MAX_TRACEBACK_BYTES // len(_LINE.encode())))[:MAX_TRACEBACK_BYTES]
_TASK_ERROR = ExecutionErrorInfo(
    error_type="generic",
    message="myapp.errors.PaymentDeclined: card declined",
    is_retryable=True,
    exception_type="myapp.errors.PaymentDeclined",
    traceback=_LONG_TRACEBACK,
)


def test_the_long_traceback_is_as_long_as_allowed() -> None:
    assert MAX_TRACEBACK_BYTES - 100 < len(_LONG_TRACEBACK.encode()) <= MAX_TRACEBACK_BYTES


async def test_exception_type_and_a_16_kib_traceback_round_trip(storage: DurableStorage) -> None:
    nested = replace(_TASK_ERROR, traceback=None)
    stored = replace(
        full_record("te_tb"),
        error=_TASK_ERROR,
        finalize_task_error=nested,
        children_tasks_errors=(
            ChildTaskError(index=0, task_id="a", execution_id="te_a", error=nested),
        ),
    )
    await insert(storage, stored)
    async with storage.transaction() as tx:
        [read] = await tx.get_task_executions(["te_tb"])
    assert read == stored
    assert read.error is not None
    assert read.error.traceback == _LONG_TRACEBACK


async def test_an_update_stores_and_replaces_the_details(storage: DurableStorage) -> None:
    await insert(storage, record("te_up", status="running"))
    async with storage.transaction() as tx:
        await update_one(
            tx,
            WhereByExecutionIds(["te_up"]),
            TaskExecutionUpdate(updated_at=at(1), status="ready", error=_TASK_ERROR),
        )
    async with storage.transaction() as tx:
        [read] = await tx.get_task_executions(["te_up"])
    assert read.error == _TASK_ERROR
    library_error = ExecutionErrorInfo(
        error_type="timed_out", message="Task timed out", is_retryable=True
    )
    async with storage.transaction() as tx:
        await update_one(
            tx,
            WhereByExecutionIds(["te_up"]),
            TaskExecutionUpdate(updated_at=at(2), status="timed_out", error=library_error),
        )
        [read] = await tx.get_task_executions(["te_up"])
    # The whole error is replaced: no traceback of the earlier attempt is left behind.
    assert read.error == library_error
    assert (read.error.exception_type, read.error.traceback) == (None, None)


async def test_the_purpose_named_writes_store_the_whole_error(storage: DurableStorage) -> None:
    # Each writes its error without the generic update: each must encode the details too.
    await insert(
        storage,
        record("te_cancel", status="running", version=1),
        record("te_descendant", status="waiting_for_children_tasks"),
        record("te_unreadable", status="ready"),
    )
    async with storage.transaction() as tx:
        assert await tx.cancel_task_execution(
            TaskExecutionCancel(
                "te_cancel",
                status="running",
                version=1,
                error=_TASK_ERROR,
                needs_promise_cancellation=True,
                now=at(1),
            )
        )
        cancelled = await tx.cancel_active_task_executions(
            ["te_descendant"], error=_TASK_ERROR, now=at(1), running_here=()
        )
        assert cancelled == ["te_descendant"]
        assert await tx.fail_unreadable_task_execution(
            "te_unreadable", error=_TASK_ERROR, now=at(1)
        )
    async with storage.transaction() as tx:
        rows = await tx.get_task_executions(["te_cancel", "te_descendant", "te_unreadable"])
    assert [row.error for row in rows] == [_TASK_ERROR] * 3


def test_an_error_without_details_is_encoded_as_before() -> None:
    # Exactly the keys of the earlier format, so an older executor sharing the table reads it.
    assert error_json(ExecutionErrorInfo("cancelled", "Task cancelled", False)) == {
        "error_type": "cancelled",
        "message": "Task cancelled",
        "is_retryable": False,
        "is_internal": False,
    }


# Rows as the code before exception_type/traceback wrote them: errors without those keys.
_OLD_ERROR = {
    "error_type": "generic",
    "message": "boom",
    "is_retryable": True,
    "is_internal": False,
}
_OLD_CHILD_ERRORS = [{"index": 0, "task_id": "c", "execution_id": "te_c", "error": _OLD_ERROR}]
_OLD_FINALIZE_ERROR = {"error_type": "timed_out", "message": "slow", "is_retryable": False}

_SQLITE_INSERT = """
INSERT INTO durable_task_executions (
    task_id, execution_id, retry_options, sleep_ms_before_run, timeout_ms, run_input,
    children_tasks_completed_count, children_tasks_errors, finalize_task_error, error, status,
    is_closed, needs_promise_cancellation, retry_attempts, start_at, started_at, finished_at,
    version, created_at, updated_at
) VALUES (
    'old', 'te_old', '{"max_attempts": 0}', 0, 1000, '"input"',
    0, ?, ?, ?, 'failed', 1, 0, 0, 1000, 1000, 2000, 3, 1000, 2000
)
"""
_POSTGRES_INSERT = """
INSERT INTO durable_task_executions (
    task_id, execution_id, retry_options, sleep_ms_before_run, timeout_ms, run_input,
    children_tasks_completed_count, children_tasks_errors, finalize_task_error, error, status,
    is_closed, needs_promise_cancellation, retry_attempts, start_at, started_at, finished_at,
    version, created_at, updated_at
) VALUES (
    'old', 'te_old', '{"max_attempts": 0}', 0, 1000, '"input"',
    0, %s::jsonb, %s::jsonb, %s::jsonb, 'failed', true, false, 0,
    now(), now(), now(), 3, now(), now()
)
"""


def _insert_old_row(url: str, request: pytest.FixtureRequest, backend: str) -> None:
    values = (
        json.dumps(_OLD_CHILD_ERRORS),
        json.dumps(_OLD_FINALIZE_ERROR),
        json.dumps(_OLD_ERROR),
    )
    if backend == "sqlite":
        path: Path = request.getfixturevalue("sqlite_path")
        with sqlite3.connect(path) as conn:
            conn.execute(_SQLITE_INSERT, values)
        conn.close()
    else:
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute(_POSTGRES_INSERT, values)


async def test_a_row_written_before_the_details_existed_still_reads(
    request: pytest.FixtureRequest, sql_backend: str
) -> None:
    url = storage_url(request, sql_backend)
    async with open_storage(url):
        pass  # create the schema
    _insert_old_row(url, request, sql_backend)
    async with open_storage(url) as storage, storage.transaction() as tx:
        [read] = await tx.get_task_executions(["te_old"])
    assert read.error == ExecutionErrorInfo("generic", "boom", True)
    assert read.finalize_task_error == ExecutionErrorInfo("timed_out", "slow", False)
    assert read.children_tasks_errors == (
        ChildTaskError(index=0, task_id="c", execution_id="te_c", error=read.error),
    )
    assert (read.error.exception_type, read.error.traceback) == (None, None)


async def test_a_traceback_that_is_not_text_is_a_malformed_row(sqlite_path: Path) -> None:
    url = f"sqlite:///{sqlite_path}"
    async with open_storage(url) as storage:
        await insert(storage, record("te_bad"))
    with sqlite3.connect(sqlite_path) as conn:
        conn.execute(
            "UPDATE durable_task_executions SET error = ? WHERE execution_id = 'te_bad'",
            (json.dumps({**_OLD_ERROR, "traceback": ["not", "text"]}),),
        )
    conn.close()
    async with open_storage(url) as storage, storage.transaction() as tx:
        with pytest.raises(MalformedRowError) as raised:
            await tx.get_task_executions(["te_bad"])
    assert (raised.value.execution_id, raised.value.column) == ("te_bad", "error")
    assert "'traceback' must be a string" in str(raised.value)
