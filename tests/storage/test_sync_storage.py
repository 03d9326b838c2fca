"""The SyncClient's storages, directly: what they store and refuse, the retried insert that
finds its own rows, and the debounced ready notice. Real SQLite files and PostgreSQL schemas."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from durable_execution._inserts import insert_new_sync, insert_unless_stored_sync
from durable_execution._sync_open import open_sync_storage
from durable_execution._transactions import run_sync
from durable_execution.model import ExecutionErrorInfo, TaskExecutionStatus
from durable_execution.storage import TaskExecutionCancel
from durable_execution.storage._pg_notices import ThreadedReadyNotices
from durable_execution.storage.errors import DuplicateExecutionIdError
from durable_execution.storage.sync_types import SyncStorage, SyncStorageTx

from ._records import full_record, record

LOGGER = logging.getLogger("tests.sync_storage")


@pytest.fixture(params=["sqlite", "postgresql"])
def sync_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SyncStorage]:
    """A migrated SyncClient storage on a fresh SQLite file or PostgreSQL schema."""
    if request.param == "sqlite":
        db_url = f"sqlite:///{tmp_path / 'sync.db'}"
    else:
        db_url = request.getfixturevalue("postgres_url")
    opened = open_sync_storage(
        db_url,
        table_name="durable_task_executions",
        migrate=True,
        busy_timeout_ms=None,
        sqlite_synchronous=None,
        pool_min_size=None,
        pool_max_size=None,
    )
    try:
        yield opened
    finally:
        opened.close()


def stored(storage: SyncStorage, *ids: str) -> list[str]:
    rows = storage.read_task_executions(list(ids))
    return [row.execution_id for row in rows]


def test_records_round_trip_every_field(sync_storage: SyncStorage) -> None:
    full = full_record("te_full")
    run_sync(sync_storage, LOGGER, lambda tx: insert_new_sync(tx, [full, record("te_min")]))
    rows = sync_storage.read_task_executions(["te_min", "te_unknown", "te_full"])
    assert rows == [full, record("te_min")]


def test_a_duplicate_id_stores_nothing(sync_storage: SyncStorage) -> None:
    run_sync(sync_storage, LOGGER, lambda tx: insert_new_sync(tx, [record("te_a")]))
    with pytest.raises(DuplicateExecutionIdError) as caught:
        run_sync(
            sync_storage, LOGGER, lambda tx: insert_new_sync(tx, [record("te_b"), record("te_a")])
        )
    assert caught.value.execution_ids == ["te_a"]
    with pytest.raises(DuplicateExecutionIdError):
        run_sync(
            sync_storage, LOGGER, lambda tx: insert_new_sync(tx, [record("te_c"), record("te_c")])
        )
    assert stored(sync_storage, "te_a", "te_b", "te_c") == ["te_a"]


def test_a_retried_insert_finds_its_own_rows(sync_storage: SyncStorage) -> None:
    # As after a commit whose outcome was unknown: te_a was stored by the first attempt.
    run_sync(sync_storage, LOGGER, lambda tx: insert_new_sync(tx, [record("te_a")]))
    run_sync(
        sync_storage,
        LOGGER,
        lambda tx: insert_unless_stored_sync(tx, [record("te_a"), record("te_b")]),
    )
    assert stored(sync_storage, "te_a", "te_b") == ["te_a", "te_b"]
    other = replace(record("te_b"), run_input='"other"')
    with pytest.raises(DuplicateExecutionIdError) as caught:
        run_sync(
            sync_storage, LOGGER, lambda tx: insert_unless_stored_sync(tx, [other, record("te_c")])
        )
    assert caught.value.execution_ids == ["te_b"]
    assert stored(sync_storage, "te_c") == []


CANCELLED = ExecutionErrorInfo(error_type="cancelled", message="Task cancelled", is_retryable=False)


def test_a_cancel_matches_only_the_status_and_version_read(sync_storage: SyncStorage) -> None:
    row = record("te_a", status="running", version=3, expires_at=full_record("x").expires_at)
    run_sync(sync_storage, LOGGER, lambda tx: insert_new_sync(tx, [row, record("te_b")]))
    now = full_record("x").finished_at
    assert now is not None

    def cancel(execution_id: str, status: TaskExecutionStatus, version: int) -> bool:
        return run_sync(
            sync_storage,
            LOGGER,
            lambda tx: tx.cancel_task_execution(
                TaskExecutionCancel(
                    execution_id,
                    status=status,
                    version=version,
                    error=CANCELLED,
                    needs_promise_cancellation=True,
                    now=now,
                )
            ),
        )

    assert not cancel("te_a", "running", 2)  # a stale version
    assert not cancel("te_a", "ready", 3)  # a stale status
    assert not cancel("te_unknown", "running", 3)
    assert sync_storage.read_task_executions(["te_a", "te_b"]) == [row, record("te_b")]
    assert cancel("te_a", "running", 3)
    assert sync_storage.read_task_executions(["te_a", "te_b"]) == [
        replace(
            row,
            status="cancelled",
            error=CANCELLED,
            needs_promise_cancellation=True,
            finished_at=now,
            updated_at=now,
            version=4,
        ),
        record("te_b"),
    ]
    assert not cancel("te_a", "running", 3)  # the version read before no longer matches


def test_a_transaction_reads_by_id_in_insertion_order(sync_storage: SyncStorage) -> None:
    rows = [record("te_z"), record("te_a"), record("te_m")]

    def insert_then_read(tx: SyncStorageTx) -> list[str]:
        insert_new_sync(tx, rows)
        found = tx.get_task_executions(["te_m", "te_unknown", "te_z", "te_a", "te_m"])
        return [r.execution_id for r in found]

    assert run_sync(sync_storage, LOGGER, insert_then_read) == ["te_z", "te_a", "te_m"]


def test_a_failed_transaction_is_rolled_back(sync_storage: SyncStorage) -> None:
    def insert_then_fail(tx: object) -> None:
        insert_new_sync(tx, [record("te_a")])  # type: ignore[arg-type]
        raise DuplicateExecutionIdError(["te_x"])  # not transient: no retry

    with pytest.raises(DuplicateExecutionIdError):
        run_sync(sync_storage, LOGGER, insert_then_fail)
    assert stored(sync_storage, "te_a") == []


def test_notices_are_debounced_and_the_last_one_is_flushed_at_close() -> None:
    sent: list[float] = []
    notices = ThreadedReadyNotices(lambda: sent.append(time.monotonic()), interval_s=0.05)
    for _ in range(200):
        notices.poke()
    deadline = time.monotonic() + 10
    while not sent and time.monotonic() < deadline:
        time.sleep(0.001)
    assert len(sent) == 1  # the first poke's notice went out at once…
    notices.poke()
    notices.close()  # …and one more is owed (its interval has not passed): close sends it
    assert len(sent) == 2
    assert notices.sent == 2
    notices.poke()  # after close: nothing
    notices.close()
    assert len(sent) == 2


def test_every_poke_is_followed_by_a_notice_sent_after_it() -> None:
    sent: list[float] = []
    notices = ThreadedReadyNotices(lambda: sent.append(time.monotonic()), interval_s=0.01)
    pokes: list[float] = []

    def poke_often() -> None:
        for _ in range(50):
            pokes.append(time.monotonic())
            notices.poke()
            time.sleep(0.002)

    threads = [threading.Thread(target=poke_often) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    time.sleep(0.1)
    notices.close()
    assert sent[-1] >= max(pokes)  # no wake-up lost
    assert len(sent) < len(pokes) / 2  # folded


def test_insert_at_once_stores_or_refuses_like_a_transaction(sync_storage: SyncStorage) -> None:
    sync_storage.insert_at_once([record("te_a"), full_record("te_full")])
    assert stored(sync_storage, "te_a", "te_full") == ["te_a", "te_full"]
    with pytest.raises(DuplicateExecutionIdError) as caught:
        sync_storage.insert_at_once([record("te_b"), record("te_a")])
    assert caught.value.execution_ids == ["te_a"]
    with pytest.raises(DuplicateExecutionIdError):
        sync_storage.insert_at_once([record("te_c"), record("te_c")])
    assert stored(sync_storage, "te_b", "te_c") == []
    [row] = sync_storage.read_task_executions(["te_full"])
    assert row == full_record("te_full")
