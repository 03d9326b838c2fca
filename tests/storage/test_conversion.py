"""The record <-> row layer: its JSON shapes, and clear errors for rows that do not decode.

The decoding checks run on the neutral column form without a database; the last tests corrupt
real rows (raw SQL, outside the storage) to show that both SQL backends report the execution id
and the column instead of failing somewhere deep in the executor.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from durable_execution.model import ExecutionErrorInfo
from durable_execution.storage import (
    MalformedRowError,
    TaskExecutionUpdate,
    open_storage,
)
from durable_execution.storage.conversion import (
    Columns,
    JsonValue,
    changes_from_update,
    columns_from_record,
    load_json_text,
    record_from_columns,
)

from ._records import at, full_record, insert, record


def test_columns_round_trip_to_the_same_record() -> None:
    for original in (record("te_min"), full_record("te_full")):
        assert record_from_columns(columns_from_record(original)) == original


def test_the_json_shapes_are_snake_case_and_absent_stays_absent() -> None:
    columns = columns_from_record(full_record("te_full"))
    assert columns.retry_options == {
        "max_attempts": 3,
        "base_delay_ms": 250,
        "delay_multiplier": 1.5,
        "max_delay_ms": 10_000,
    }
    assert columns.children_tasks == [
        {"task_id": "a", "execution_id": "te_a"},
        {"task_id": "b", "execution_id": "te_b"},
    ]
    assert columns.children_tasks_errors == [
        {
            "index": 1,
            "task_id": "b",
            "execution_id": "te_b",
            "error": {
                "error_type": "timed_out",
                "message": 'bœm "quoted"\n',
                "is_retryable": False,
                "is_internal": False,
            },
        }
    ]
    assert columns.is_finalize_task is True
    minimal = columns_from_record(record("te_min"))
    assert minimal.retry_options == {"max_attempts": 0, "base_delay_ms": 0, "delay_multiplier": 1.0}
    assert (minimal.root_task_id, minimal.parent_task_id, minimal.is_finalize_task) == (
        None,
        None,
        None,
    )
    assert (minimal.children_tasks, minimal.error, minimal.expires_at) == (None, None, None)


def test_an_update_maps_none_to_keep_and_truncates_times() -> None:
    changes = changes_from_update(
        TaskExecutionUpdate(updated_at=at(0).replace(microsecond=891_999), unset_error=True)
    )
    assert changes["new_updated_at"] == at(0)
    assert changes["unset_error"] is True
    assert changes["new_error"] is None
    assert changes["new_children_tasks"] is None
    assert (
        changes_from_update(TaskExecutionUpdate(updated_at=at(0), children_tasks=()))[
            "new_children_tasks"
        ]
        == []
    )


def _valid() -> Columns:
    return columns_from_record(full_record("te_bad"))


MALFORMED: list[tuple[str, dict[str, Any], str]] = [
    ("retry_options", {"retry_options": [1]}, "expected a JSON object"),
    ("retry_options", {"retry_options": {"base_delay_ms": 1}}, "'max_attempts'"),
    ("retry_options", {"retry_options": {"max_attempts": True}}, "'max_attempts'"),
    ("retry_options", {"retry_options": {"max_attempts": 1, "delay_multiplier": "x"}}, "number"),
    ("retry_options", {"retry_options": {"max_attempts": 1, "max_delay_ms": 1.5}}, "max_delay"),
    ("children_tasks", {"children_tasks": {"task_id": "a"}}, "expected a JSON array"),
    ("children_tasks", {"children_tasks": [{"task_id": "a"}]}, "'execution_id'"),
    ("children_tasks_errors", {"children_tasks_errors": [{"index": 0}]}, "'task_id'"),
    ("finalize_task", {"finalize_task": "te_x"}, "expected a JSON object"),
    ("finalize_task_error", {"finalize_task_error": {"error_type": "oops"}}, "error_type"),
    ("error", {"error": {"error_type": "generic", "message": 1}}, "'message'"),
    ("error", {"error": {"error_type": "generic", "message": ""}}, "'is_retryable'"),
    ("status", {"status": "paused"}, "unknown status 'paused'"),
    ("root_task_id/root_execution_id", {"root_execution_id": None}, "only one"),
    ("parent_task_id/parent_execution_id", {"parent_task_id": None}, "only one"),
]


@pytest.mark.parametrize(("column", "changes", "problem"), MALFORMED)
def test_a_malformed_row_names_the_execution_and_the_column(
    column: str, changes: dict[str, Any], problem: str
) -> None:
    with pytest.raises(MalformedRowError, match=problem) as raised:
        record_from_columns(replace(_valid(), **changes))
    assert raised.value.execution_id == "te_bad"
    assert raised.value.column == column
    assert str(raised.value).startswith(f"Stored execution te_bad has a malformed {column}: ")


def test_invalid_json_text_is_a_malformed_row() -> None:
    with pytest.raises(MalformedRowError, match="invalid JSON") as raised:
        load_json_text("{not json", execution_id="te_x", column="error")
    assert (raised.value.execution_id, raised.value.column) == ("te_x", "error")
    assert load_json_text(None, execution_id="te_x", column="error") is None


# --- corrupted rows in real databases ---------------------------------------------------------


async def _read_fails_naming(url: str, corrupt: Any, column: str) -> None:
    # Finished and not yet closed (what the closer reads), and one still active.
    good = record("te_good", status="completed", updated_at=at(1))
    poison = record("te_poison", status="failed", error=None, updated_at=at(2))
    active = record("te_active", status="running", error=None, updated_at=at(3))
    async with open_storage(url) as storage:
        await insert(storage, good, poison, active)
        corrupt("te_poison")
        corrupt("te_active")
        async with storage.transaction() as tx:
            with pytest.raises(MalformedRowError) as by_id:
                await tx.get_task_executions(["te_good", "te_poison"])
            with pytest.raises(MalformedRowError) as unclosed:
                await tx.get_finished_unclosed_task_executions(limit=10)
            # The ids still read, so the closer can find and set the poison row aside; the
            # other rows still decode.
            ids = await tx.get_finished_unclosed_task_execution_ids(limit=10)
            readable = await tx.get_task_executions(["te_good"])
            finished = await tx.get_finished_task_execution_ids(
                ["te_good", "te_poison", "te_active"]
            )
            # The active poison row is failed without being decoded; a finished one is left.
            failed = await tx.fail_unreadable_task_execution(
                "te_active", error=UNREADABLE, now=at(9)
            )
            not_failed = await tx.fail_unreadable_task_execution(
                "te_poison", error=UNREADABLE, now=at(9)
            )
            now_finished = await tx.get_finished_task_execution_ids(["te_active"])
        assert ids == ["te_good", "te_poison"]
        assert readable == [good]
        assert finished == ["te_good", "te_poison"]
        assert (failed, not_failed, now_finished) == (True, False, ["te_active"])
    for raised in (by_id, unclosed):
        assert (raised.value.execution_id, raised.value.column) == ("te_poison", column)


UNREADABLE = ExecutionErrorInfo(error_type="generic", message="unreadable", is_retryable=False)


WRONG_SHAPE: JsonValue = {"error_type": "generic", "message": ["not", "a", "string"]}


async def test_sqlite_reports_a_malformed_stored_value(sqlite_path: Path) -> None:
    def corrupt(execution_id: str) -> None:
        with sqlite3.connect(sqlite_path) as conn:
            conn.execute(
                "UPDATE durable_task_executions SET error = ? WHERE execution_id = ?",
                (json.dumps(WRONG_SHAPE), execution_id),
            )
        conn.close()

    await _read_fails_naming(f"sqlite:///{sqlite_path}", corrupt, "error")


async def test_postgres_reports_a_malformed_stored_value(postgres_url: str) -> None:
    def corrupt(execution_id: str) -> None:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL(
                    "UPDATE durable_task_executions SET retry_options = {} WHERE execution_id = {}"
                ).format(
                    sql.Literal(json.dumps({"max_attempts": "many"})), sql.Literal(execution_id)
                )
            )

    await _read_fails_naming(postgres_url, corrupt, "retry_options")
