"""The optional inspection queries (``InspectableStorage``), on memory, SQLite and PostgreSQL.

They back ``durable-execution list`` and ``stats``; every backend must answer them alike:
newest first, filters, paging, counts and the oldest ready execution.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from durable_execution.model import ParentTaskRef, TaskRef
from durable_execution.storage import DurableStorage, StorageError
from durable_execution.storage.types import InspectableStorage, TaskExecutionRecord

from ._records import at, full_record, insert, record


def inspectable(storage: DurableStorage) -> InspectableStorage:
    assert isinstance(storage, InspectableStorage)
    return storage


async def populate(storage: DurableStorage) -> None:
    """Inserted in this order (newest last), with created_at deliberately not in that order:
    "newest" means inserted last."""
    await insert(
        storage,
        record("te_1", status="completed", task_id="a", offset_ms=50),
        record("te_2", status="ready", task_id="b", offset_ms=10),
        record("te_3", status="failed", task_id="a", offset_ms=30),
    )
    await insert(
        storage,
        record(
            "te_4",
            status="running",
            task_id="a",
            parent_task=ParentTaskRef(task_id="b", execution_id="te_2"),
            root_task=TaskRef(task_id="b", execution_id="te_2"),
        ),
        record("te_5", status="ready", task_id="a", offset_ms=-20),
    )


async def listed(storage: DurableStorage, **filters: object) -> list[str]:
    records = await inspectable(storage).list_task_executions(**filters)  # type: ignore[arg-type]
    return [r.execution_id for r in records]


async def test_every_backend_implements_inspection(storage: DurableStorage) -> None:
    assert isinstance(storage, InspectableStorage)


async def test_list_is_newest_first_and_filters(storage: DurableStorage) -> None:
    await populate(storage)
    assert await listed(storage, limit=10) == ["te_5", "te_4", "te_3", "te_2", "te_1"]
    assert await listed(storage, limit=10, statuses=["ready"]) == ["te_5", "te_2"]
    assert await listed(storage, limit=10, statuses=["ready", "failed"]) == [
        "te_5",
        "te_3",
        "te_2",
    ]
    assert await listed(storage, limit=10, statuses=[]) == []
    assert await listed(storage, limit=10, task_id="a") == ["te_5", "te_4", "te_3", "te_1"]
    assert await listed(storage, limit=10, task_id="nope") == []
    assert await listed(storage, limit=10, top_level_only=True) == ["te_5", "te_3", "te_2", "te_1"]
    assert await listed(
        storage, limit=10, task_id="a", statuses=["running", "completed"], top_level_only=True
    ) == ["te_1"]


async def test_list_pages(storage: DurableStorage) -> None:
    await populate(storage)
    assert await listed(storage, limit=2) == ["te_5", "te_4"]
    assert await listed(storage, limit=2, offset=2) == ["te_3", "te_2"]
    assert await listed(storage, limit=2, offset=4) == ["te_1"]
    assert await listed(storage, limit=2, offset=5) == []
    assert await listed(storage, limit=0) == []
    assert await listed(storage, limit=2, offset=1, task_id="a") == ["te_4", "te_3"]
    with pytest.raises(StorageError, match="limit must be >= 0"):
        await listed(storage, limit=-1)
    with pytest.raises(StorageError, match="offset must be >= 0"):
        await listed(storage, limit=1, offset=-1)


async def test_list_pages_by_keyset(storage: DurableStorage) -> None:
    """``before_execution_id`` continues after the last row of a page, filters kept."""
    await populate(storage)
    assert await listed(storage, limit=2, before_execution_id="te_4") == ["te_3", "te_2"]
    assert await listed(storage, limit=2, before_execution_id="te_2") == ["te_1"]
    assert await listed(storage, limit=2, before_execution_id="te_1") == []
    assert await listed(storage, limit=2, task_id="a", before_execution_id="te_5") == [
        "te_4",
        "te_3",
    ]
    assert await listed(storage, limit=5, statuses=["ready"], before_execution_id="te_5") == [
        "te_2"
    ]
    # Offset counts from the cursor.
    assert await listed(storage, limit=1, offset=1, before_execution_id="te_5") == ["te_3"]
    # An execution that no longer exists ends the walk instead of restarting it.
    assert await listed(storage, limit=5, before_execution_id="te_gone") == []


async def test_list_filters_by_creation_time(storage: DurableStorage) -> None:
    """``created_from`` is inclusive, ``created_before`` exclusive (te_4 is created at T0)."""
    await populate(storage)
    assert await listed(storage, limit=10, created_from=at(30)) == ["te_3", "te_1"]
    assert await listed(storage, limit=10, created_before=at(10)) == ["te_5", "te_4"]
    assert await listed(storage, limit=10, created_from=at(0), created_before=at(30)) == [
        "te_4",
        "te_2",
    ]
    # A sub-millisecond bound means the same on every backend (stored times are whole ms).
    assert await listed(storage, limit=10, created_from=at(29) + timedelta(microseconds=1)) == [
        "te_3",
        "te_1",
    ]
    with pytest.raises(StorageError, match="naive"):
        await listed(storage, limit=1, created_from=datetime(2026, 1, 1))


async def test_listed_records_round_trip(storage: DurableStorage) -> None:
    full = full_record("te_full")
    await insert(storage, full)
    [back] = await inspectable(storage).list_task_executions(limit=1)
    assert back == full


async def test_counts_by_status(storage: DurableStorage) -> None:
    spy = inspectable(storage)
    assert await spy.count_task_executions_by_status() == {}
    await populate(storage)
    assert await spy.count_task_executions_by_status() == {
        "completed": 1,
        "ready": 2,
        "failed": 1,
        "running": 1,
    }
    assert await spy.count_task_executions_by_status(task_id="a") == {
        "completed": 1,
        "failed": 1,
        "running": 1,
        "ready": 1,
    }
    assert await spy.count_task_executions_by_status(top_level_only=True) == {
        "completed": 1,
        "ready": 2,
        "failed": 1,
    }
    assert await spy.count_task_executions_by_status(task_id="a", top_level_only=True) == {
        "completed": 1,
        "failed": 1,
        "ready": 1,
    }


async def test_oldest_ready(storage: DurableStorage) -> None:
    spy = inspectable(storage)
    assert await spy.get_oldest_ready_task_execution() is None
    await populate(storage)
    oldest = await spy.get_oldest_ready_task_execution()
    assert isinstance(oldest, TaskExecutionRecord)
    assert (oldest.execution_id, oldest.start_at) == ("te_5", at(-20))
    for_b = await spy.get_oldest_ready_task_execution(task_id="b")
    assert for_b is not None
    assert for_b.execution_id == "te_2"
    assert await spy.get_oldest_ready_task_execution(task_id="nope") is None


async def test_oldest_ready_ties_go_to_the_first_inserted(storage: DurableStorage) -> None:
    await insert(
        storage,
        record("te_b", offset_ms=5),
        record("te_a", offset_ms=5),
        record("te_done", status="completed", offset_ms=-100),
    )
    oldest = await inspectable(storage).get_oldest_ready_task_execution()
    assert oldest is not None
    assert oldest.execution_id == "te_b"
