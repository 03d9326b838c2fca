"""Every generated SQLite query, run against a real database file, results checked."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
import sqlite_utils

from durable_execution.clock import to_epoch_ms
from durable_execution.generated import sqlite as lite
from durable_execution.generated.sqlite import queries as lite_queries
from durable_execution.generated.sqlite.models import GetPrunableRootsRow as SqlitePrunableRoot
from durable_execution.generated.sqlite.models import GetReadyTaskExecutionsToClaimRow

from ._support import (
    ACTIVE,
    ASKED,
    BY_IDS,
    CANCEL_ASKED,
    CANCEL_ERROR,
    CLAIMED,
    EVERY_CHANGE,
    EXPIRED,
    EXPIRING,
    EXPIRY,
    FINISHED,
    FINISHED_IDS,
    FINISHING,
    INDEXES,
    LIMITED,
    PRUNE_BEFORE,
    PRUNED,
    PRUNED_TREES,
    READY_CONCURRENCY_INDEX,
    RENEW_ASKED,
    RENEWED,
    REQUESTS,
    REQUESTS_ASKED,
    RUNNING_HERE,
    UNCLOSED,
    UNREADABLE,
    UNREADABLE_ERROR,
    Change,
    Execution,
    at,
    cancelled_by_parent,
    cancelled_by_user,
    claim_change,
    expected_after,
    failed_unreadable,
    from_sqlite,
    fully_populated,
    sqlite_changes,
    sqlite_insert,
    sqlite_migrate,
)

Q = lite.Queries()


@pytest.fixture
def conn(sqlite_path: Path) -> Iterator[sqlite3.Connection]:
    """A migrated database in autocommit mode (transactions are explicit, as in the storage)."""
    connection = sqlite3.connect(sqlite_path, isolation_level=None)
    try:
        sqlite_migrate(connection)
        yield connection
    finally:
        connection.close()


def read(conn: sqlite3.Connection, *execution_ids: str) -> list[Execution]:
    return [
        from_sqlite(row) for row in Q.get_task_executions_by_ids(conn, execution_ids=execution_ids)
    ]


def expired(conn: sqlite3.Connection, now: datetime, row_limit: int = 100) -> list[str]:
    rows = Q.get_expired_task_executions(conn, now=to_epoch_ms(now), row_limit=row_limit)
    return [row.execution_id for row in rows]


def unclosed(
    conn: sqlite3.Connection, row_limit: int = 100, execution_ids: list[str] | None = None
) -> list[str]:
    """The rows query, and the ids query when it applies (no ids given); they must agree."""
    if execution_ids is None:
        rows = Q.get_finished_unclosed_task_executions(conn, row_limit=row_limit)
    else:
        rows = Q.get_finished_unclosed_task_executions_by_ids(
            conn, execution_ids=execution_ids, row_limit=row_limit
        )
    found = [row.execution_id for row in rows]
    if execution_ids is None:
        assert Q.get_finished_unclosed_task_execution_ids(conn, row_limit=row_limit) == found
    return found


def test_every_generated_query_is_exercised_here() -> None:
    # A new named query must come with tests: extend this file, then this list.
    public = {name for name in dir(lite.Queries) if not name.startswith("_")}
    assert public == {
        "get_task_execution_id_by_idempotency_key",
        "insert_task_execution",
        "get_existing_execution_ids",
        "get_applied_migration_versions",
        "insert_applied_migration",
        "get_task_executions_by_ids",
        "get_finished_task_execution_ids",
        "get_expired_task_executions",
        "get_finished_unclosed_task_executions",
        "get_finished_unclosed_task_executions_by_ids",
        "get_finished_unclosed_task_execution_ids",
        "close_task_executions",
        "postpone_closing_task_executions",
        "cancel_task_execution",
        "cancel_active_task_executions",
        "take_cancellation_requests",
        "fail_unreadable_task_execution",
        "update_task_executions_by_execution_ids",
        "list_task_executions",
        "count_task_executions_by_status",
        "get_oldest_ready_task_execution",
        "claim_ready_task_executions",
        "get_prunable_roots",
        "count_execution_trees",
        "delete_execution_trees",
        "get_ready_task_executions_to_claim",
        "claim_ready_task_execution_by_execution_id",
        "renew_task_execution_leases",
        "register_task_schedule",
        "get_task_schedules",
        "advance_task_schedule",
        "list_task_schedules",
    }


# --- migrations ---------------------------------------------------------------------------------


def expected_indexes(table: str) -> dict[str, tuple[list[str], bool]]:
    indexes = {name.format(t=table): spec for name, spec in INDEXES.items()}
    return {**indexes, f"ix_{table}_ready_concurrency": READY_CONCURRENCY_INDEX["sqlite"]}


def indexes_of(conn: sqlite3.Connection, table: str) -> dict[str, tuple[list[str], bool]]:
    db = sqlite_utils.Database(conn)
    return {
        index.name: (index.columns, bool(index.unique))
        for index in db.table(table).indexes
        if not index.name.startswith("sqlite_autoindex")
    }


def test_migrations_create_the_tables_and_indexes_and_record_versions(
    conn: sqlite3.Connection,
) -> None:
    db = sqlite_utils.Database(conn)
    assert set(db.table_names()) == {
        "durable_task_executions",
        "durable_task_executions_migrations",
        "durable_task_executions_schedules",
    }
    assert indexes_of(conn, "durable_task_executions") == expected_indexes(
        "durable_task_executions"
    )
    numbered = [m.version for m in lite.MIGRATIONS if m.version > 0]
    assert numbered == sorted(numbered)
    assert numbered
    assert list(Q.get_applied_migration_versions(conn)) == numbered


def test_migrating_again_applies_nothing_and_keeps_the_data(conn: sqlite3.Connection) -> None:
    sqlite_insert(Q, conn, [Execution("te_1")])
    assert sqlite_migrate(conn) == []
    numbered = [m.version for m in lite.MIGRATIONS if m.version > 0]
    assert list(Q.get_applied_migration_versions(conn)) == numbered
    assert [e.execution_id for e in read(conn, "te_1")] == ["te_1"]


def test_insert_applied_migration_records_name_and_time(sqlite_path: Path) -> None:
    connection = sqlite3.connect(sqlite_path, isolation_level=None)
    try:
        bootstrap = next(m for m in lite.migrations_for_table("x") if m.version == 0)
        for statement in bootstrap.statements:
            connection.execute(statement)
        queries = lite.Queries("x")
        assert queries.get_applied_migration_versions(connection) == []
        queries.insert_applied_migration(connection, version=7, name="seven", applied_at=1234)
        queries.insert_applied_migration(connection, version=3, name="three", applied_at=1235)
        assert list(queries.get_applied_migration_versions(connection)) == [3, 7]
        stored = connection.execute("SELECT version, name, applied_at FROM x_migrations").fetchall()
        assert sorted(stored) == [(3, "three", 1235), (7, "seven", 1234)]
        with pytest.raises(sqlite3.IntegrityError):
            queries.insert_applied_migration(connection, version=7, name="again", applied_at=1)
    finally:
        connection.close()


# --- insert and round trips ---------------------------------------------------------------------


def test_every_column_round_trips(conn: sqlite3.Connection) -> None:
    full = fully_populated("te_full")
    minimal = Execution("te_minimal")
    sqlite_insert(Q, conn, [full, minimal])
    assert read(conn, "te_full", "te_minimal") == [full, minimal]


def test_columns_are_stored_as_epoch_ms_json_text_and_0_1(conn: sqlite3.Connection) -> None:
    full = fully_populated("te_full")
    sqlite_insert(Q, conn, [full])
    (row,) = Q.get_task_executions_by_ids(conn, execution_ids=["te_full"])
    # Milliseconds, not seconds: the 891 ms of T0 survive.
    assert row.start_at == to_epoch_ms(at(1)) == 1_741_064_767_892
    assert row.expires_at == to_epoch_ms(at(4))
    assert row.is_closed is True
    assert row.needs_promise_cancellation is True
    assert row.is_finalize_task is True
    raw = conn.execute(
        "SELECT typeof(start_at), is_closed, typeof(is_closed), children_tasks, output "
        "FROM durable_task_executions"
    ).fetchone()
    assert raw == (
        "integer",
        1,
        "integer",
        '[{"task_id": "a", "execution_id": "te_a"}, {"task_id": "b", "execution_id": "te_b"}]',
        "ünïcödé output ✓",
    )


def test_false_booleans_come_back_as_bool(conn: sqlite3.Connection) -> None:
    child = Execution(
        "te_1", parent_task_id="p", parent_execution_id="te_p", is_finalize_task=False
    )
    sqlite_insert(Q, conn, [child])
    (row,) = Q.get_task_executions_by_ids(conn, execution_ids=["te_1"])
    assert (row.is_finalize_task, row.is_closed, row.needs_promise_cancellation) == (
        False,
        False,
        False,
    )
    assert {type(row.is_finalize_task), type(row.is_closed)} == {bool}


@pytest.mark.parametrize(
    "execution",
    [
        Execution("te_x", parent_task_id="p", parent_execution_id="te_p"),  # no is_finalize_task
        Execution("te_x", parent_task_id="p", is_finalize_task=False),  # half a parent
        Execution("te_x", root_task_id="r"),  # half a root
        Execution("te_x", status="paused"),
    ],
)
def test_schema_rejects_inconsistent_records(
    conn: sqlite3.Connection, execution: Execution
) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
        sqlite_insert(Q, conn, [execution])


INSERT_RAW = (
    "INSERT INTO durable_task_executions (task_id, execution_id, retry_options, "
    "sleep_ms_before_run, timeout_ms, run_input, children_tasks_completed_count, status, "
    "is_closed, needs_promise_cancellation, retry_attempts, start_at, version, created_at, "
    "updated_at) VALUES ('t', 'te_x', {retry}, 0, 1, 'i', 0, 'ready', {closed}, 0, 0, "
    "{start}, 0, 0, 0)"
)
VALID_RAW = {"retry": "'{}'", "closed": "0", "start": "0"}


def test_schema_accepts_the_valid_raw_insert(conn: sqlite3.Connection) -> None:
    conn.execute(INSERT_RAW.format(**VALID_RAW))
    assert conn.execute("SELECT retry_options FROM durable_task_executions").fetchone() == ("{}",)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("retry", "'not json'"),
        ("closed", "2"),
        ("start", "'soon'"),  # text in a timestamp column would sort after every number
        ("start", "1.5"),
    ],
)
def test_schema_rejects_malformed_values(conn: sqlite3.Connection, column: str, value: str) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
        conn.execute(INSERT_RAW.format(**{**VALID_RAW, column: value}))


def test_duplicate_execution_id_raises_and_the_transaction_can_roll_back(
    conn: sqlite3.Connection,
) -> None:
    sqlite_insert(Q, conn, [Execution("te_1")])
    conn.execute("BEGIN IMMEDIATE")
    sqlite_insert(Q, conn, [Execution("te_2")])
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        sqlite_insert(Q, conn, [Execution("te_1", task_id="other")])
    conn.execute("ROLLBACK")
    assert read(conn, "te_1", "te_2") == [Execution("te_1")]


def test_get_existing_execution_ids_in_insertion_order(conn: sqlite3.Connection) -> None:
    sqlite_insert(Q, conn, [Execution("te_2"), Execution("te_1")])
    found = Q.get_existing_execution_ids(conn, execution_ids=["te_1", "te_3", "te_2", "te_1"])
    assert found == ["te_2", "te_1"]
    assert Q.get_existing_execution_ids(conn, execution_ids=[]) == []


# --- reads by id (select.sql) ------------------------------------------------------------------


def test_get_task_executions_by_ids_in_insertion_order(conn: sqlite3.Connection) -> None:
    sqlite_insert(Q, conn, BY_IDS)
    rows = Q.get_task_executions_by_ids(conn, execution_ids=[*ASKED, "te_2"])
    # Id order, not the asked order; unknown ids left out, a repeated one returned once.
    assert [from_sqlite(row) for row in rows] == BY_IDS[:4]
    assert all(type(row.is_closed) is bool for row in rows)
    assert all(type(row.needs_promise_cancellation) is bool for row in rows)
    assert Q.get_task_executions_by_ids(conn, execution_ids=[]) == []


def test_get_task_executions_by_ids_accepts_many_ids(conn: sqlite3.Connection) -> None:
    many = [Execution(f"te_{i:04}") for i in range(600)]
    sqlite_insert(Q, conn, many)
    asked = [e.execution_id for e in reversed(many)]
    assert read(conn, *asked) == many


def test_get_finished_task_execution_ids(conn: sqlite3.Connection) -> None:
    sqlite_insert(Q, conn, FINISHING)
    asked = [f"te_{i}" for i in range(9, 0, -1)] + ["te_missing", "te_1"]
    found = Q.get_finished_task_execution_ids(conn, execution_ids=asked)
    assert found == FINISHED_IDS  # closed or not, in id order
    assert all(type(execution_id) is str for execution_id in found)
    assert Q.get_finished_task_execution_ids(conn, execution_ids=["te_2", "te_8"]) == []
    assert Q.get_finished_task_execution_ids(conn, execution_ids=[]) == []


def test_get_expired_task_executions(conn: sqlite3.Connection) -> None:
    sqlite_insert(Q, conn, EXPIRING)
    rows = Q.get_expired_task_executions(conn, now=to_epoch_ms(EXPIRY), row_limit=100)
    # Whole rows, oldest updated_at first (te_1 and te_6 tie: insertion order).
    by_id = {e.execution_id: e for e in EXPIRING}
    assert [from_sqlite(row) for row in rows] == [by_id[i] for i in EXPIRED]
    assert {type(row.expires_at) for row in rows} == {int}
    # Strictly before now: te_7's lease ends at EXPIRY exactly.
    assert expired(conn, at(201)) == ["te_7", *EXPIRED]
    assert expired(conn, at(100)) == []
    assert expired(conn, at(101)) == ["te_1"]


@pytest.mark.parametrize("row_limit", [1, 2, 3, 100])
def test_the_limits_of_the_named_reads(conn: sqlite3.Connection, row_limit: int) -> None:
    sqlite_insert(Q, conn, EXPIRING)
    assert expired(conn, EXPIRY, row_limit) == EXPIRED[:row_limit]
    conn.execute("DELETE FROM durable_task_executions")
    sqlite_insert(Q, conn, FINISHING)
    assert unclosed(conn, row_limit) == UNCLOSED[:row_limit]
    assert (
        unclosed(conn, row_limit, ["te_9", "te_1", "te_7"]) == ["te_1", "te_7", "te_9"][:row_limit]
    )


def test_get_finished_unclosed_task_executions(conn: sqlite3.Connection) -> None:
    sqlite_insert(Q, conn, FINISHING)
    rows = Q.get_finished_unclosed_task_executions(conn, row_limit=100)
    by_id = {e.execution_id: e for e in FINISHING}
    assert [from_sqlite(row) for row in rows] == [by_id[i] for i in UNCLOSED]
    assert all(type(row.is_closed) is bool for row in rows)
    # Only among the ids given, still finished and unclosed (te_2 is active, te_3 closed).
    assert unclosed(conn, execution_ids=["te_9", "te_3", "te_2", "te_4", "te_missing"]) == [
        "te_4",
        "te_9",
    ]
    assert unclosed(conn, execution_ids=[]) == []  # no ids: nothing
    ids = Q.get_finished_unclosed_task_execution_ids(conn, row_limit=100)
    assert ids == UNCLOSED


# --- updates ------------------------------------------------------------------------------------


def update_by_ids(
    conn: sqlite3.Connection,
    execution_ids: list[str],
    change: Change,
    *,
    statuses: list[str] | None = None,
    needs_promise_cancellation: bool | None = None,
    version: int | None = None,
) -> int:
    return Q.update_task_executions_by_execution_ids(
        conn,
        **sqlite_changes(change),
        execution_ids=execution_ids,
        filter_statuses=statuses is not None,
        statuses=statuses or [],
        needs_promise_cancellation=needs_promise_cancellation,
        version=version,
    )


def test_update_writes_every_given_column_and_nothing_else(conn: sqlite3.Connection) -> None:
    full, other = fully_populated("te_full"), fully_populated("te_other")
    sqlite_insert(Q, conn, [full, other])
    assert update_by_ids(conn, ["te_full"], EVERY_CHANGE) == 1
    assert read(conn, "te_full", "te_other") == [expected_after(full, EVERY_CHANGE), other]
    # The root/parent columns and the enqueue-time options have no update parameter at all.
    changed = read(conn, "te_full")[0]
    assert (changed.root_task_id, changed.parent_execution_id, changed.timeout_ms) == (
        "root-task",
        "te_parent",
        full.timeout_ms,
    )


def test_update_with_no_values_only_writes_updated_at(conn: sqlite3.Connection) -> None:
    full = fully_populated("te_full")
    sqlite_insert(Q, conn, [full])
    assert update_by_ids(conn, ["te_full"], Change(updated_at=at(77))) == 1
    assert read(conn, "te_full") == [replace(full, updated_at=at(77))]


def test_update_can_write_false_and_zero(conn: sqlite3.Connection) -> None:
    full = fully_populated("te_full")  # is_closed and needs_promise_cancellation are True
    sqlite_insert(Q, conn, [full])
    change = Change(
        updated_at=at(5), is_closed=False, needs_promise_cancellation=False, retry_attempts=0
    )
    assert update_by_ids(conn, ["te_full"], change) == 1
    assert read(conn, "te_full") == [expected_after(full, change)]
    assert read(conn, "te_full")[0].is_closed is False


@pytest.mark.parametrize("also_given", [False, True])
def test_unset_error_and_expires_at(conn: sqlite3.Connection, also_given: bool) -> None:
    full = fully_populated("te_full")
    sqlite_insert(Q, conn, [full])
    change = Change(
        updated_at=at(9),
        unset_error=True,
        unset_expires_at=True,
        # When a new value is given too, unsetting still wins.
        error={"error_type": "generic", "message": "x", "is_retryable": True}
        if also_given
        else None,
        expires_at=at(10) if also_given else None,
    )
    assert update_by_ids(conn, ["te_full"], change) == 1
    after = read(conn, "te_full")[0]
    assert (after.error, after.expires_at) == (None, None)
    assert after == replace(full, error=None, expires_at=None, updated_at=at(9))


def test_version_guard(conn: sqlite3.Connection) -> None:
    sqlite_insert(Q, conn, [Execution("te_1", version=3)])
    stale = Change(updated_at=at(1), status="running", version=3)
    assert update_by_ids(conn, ["te_1"], stale, version=2) == 0
    assert read(conn, "te_1") == [Execution("te_1", version=3)]

    current = Change(updated_at=at(2), status="running", version=4)
    assert update_by_ids(conn, ["te_1"], current, version=3) == 1
    assert read(conn, "te_1") == [Execution("te_1", version=4, status="running", updated_at=at(2))]
    # The version read before is stale now.
    assert update_by_ids(conn, ["te_1"], Change(updated_at=at(3), version=5), version=3) == 0


def test_update_by_execution_ids_filters(conn: sqlite3.Connection) -> None:
    sqlite_insert(Q, conn, BY_IDS)
    cancel = Change(updated_at=at(50), status="cancelled", needs_promise_cancellation=True)
    assert update_by_ids(conn, ASKED, cancel, statuses=["ready", "running"]) == 3
    assert update_by_ids(conn, ASKED, cancel, statuses=[]) == 0
    assert update_by_ids(conn, ASKED, Change(updated_at=at(60)), statuses=["completed"]) == 1
    assert (
        update_by_ids(conn, ASKED, Change(updated_at=at(70)), needs_promise_cancellation=False) == 1
    )
    assert update_by_ids(conn, [], Change(updated_at=at(80))) == 0
    after = {e.execution_id: (e.status, e.updated_at) for e in read(conn, *ASKED, "te_5")}
    assert after == {
        "te_1": ("cancelled", at(50)),
        "te_2": ("cancelled", at(50)),
        "te_3": ("completed", at(70)),  # needs_promise_cancellation stayed False
        "te_4": ("cancelled", at(50)),
        "te_5": ("ready", BY_IDS[4].updated_at),  # not asked for
    }


GUARDS = [
    (None, None, None, ["te_1", "te_2", "te_3", "te_4"]),
    (["ready"], None, None, ["te_1", "te_4"]),
    (["running", "completed"], None, None, ["te_2", "te_3"]),
    ([], None, None, []),  # an empty list of statuses matches nothing
    (["cancelled"], None, None, []),
    (None, True, None, ["te_2", "te_4"]),
    (None, False, None, ["te_1", "te_3"]),  # False is a guard, not "no guard"
    (None, None, 0, ["te_1", "te_4"]),
    (None, None, 2, ["te_3"]),
    (None, None, 9, []),
    (["ready", "running"], True, None, ["te_2", "te_4"]),
    (["ready", "running"], True, 0, ["te_4"]),
    (["ready"], False, 1, []),
]


@pytest.mark.parametrize(("statuses", "needs_promise_cancellation", "version", "expected"), GUARDS)
def test_update_guards(
    conn: sqlite3.Connection,
    statuses: list[str] | None,
    needs_promise_cancellation: bool | None,
    version: int | None,
    expected: list[str],
) -> None:
    sqlite_insert(Q, conn, BY_IDS)
    count = update_by_ids(
        conn,
        ASKED,
        Change(updated_at=at(99)),
        statuses=statuses,
        needs_promise_cancellation=needs_promise_cancellation,
        version=version,
    )
    assert count == len(expected)
    after = read(conn, *ASKED, "te_5")
    assert [e.execution_id for e in after if e.updated_at == at(99)] == expected


def test_update_statuses_are_ignored_unless_flagged(conn: sqlite3.Connection) -> None:
    sqlite_insert(Q, conn, BY_IDS)
    count = Q.update_task_executions_by_execution_ids(
        conn,
        **sqlite_changes(Change(updated_at=at(99))),
        execution_ids=ASKED,
        filter_statuses=False,
        statuses=["cancelled"],
        needs_promise_cancellation=None,
        version=None,
    )
    assert count == 4


# --- the closer's and the cancels' writes (close.sql, cancel.sql, update.sql) ------------------


def test_close_task_executions_writes_is_closed_and_updated_at(conn: sqlite3.Connection) -> None:
    sqlite_insert(Q, conn, FINISHING)
    count = Q.close_task_executions(
        conn, now=to_epoch_ms(at(60)), execution_ids=["te_4", "te_missing", "te_1"]
    )
    assert count == 2
    assert type(count) is int
    closed = {"te_4", "te_1"}
    assert read(conn, *(e.execution_id for e in FINISHING)) == [
        replace(e, is_closed=True, updated_at=at(60)) if e.execution_id in closed else e
        for e in FINISHING
    ]
    assert unclosed(conn) == ["te_6", "te_5", "te_7", "te_9"]
    assert Q.close_task_executions(conn, now=to_epoch_ms(at(61)), execution_ids=[]) == 0


def test_postpone_closing_only_moves_updated_at(conn: sqlite3.Connection) -> None:
    sqlite_insert(Q, conn, FINISHING)
    count = Q.postpone_closing_task_executions(
        conn, now=to_epoch_ms(at(60)), execution_ids=["te_4", "te_missing"]
    )
    assert count == 1
    assert read(conn, "te_4") == [replace(FINISHING[3], updated_at=at(60))]
    assert unclosed(conn) == ["te_6", "te_1", "te_5", "te_7", "te_9", "te_4"]
    assert Q.postpone_closing_task_executions(conn, now=to_epoch_ms(at(61)), execution_ids=[]) == 0


def cancel_one(
    conn: sqlite3.Connection,
    execution_id: str,
    status: str,
    version: int,
    *,
    needs_promise_cancellation: bool = True,
) -> int:
    return Q.cancel_task_execution(
        conn,
        error=json.dumps(CANCEL_ERROR),
        needs_promise_cancellation=needs_promise_cancellation,
        now=to_epoch_ms(at(80)),
        execution_id=execution_id,
        expected_status=status,
        expected_version=version,
    )


def test_cancel_task_execution_is_guarded_by_status_and_version(conn: sqlite3.Connection) -> None:
    full = fully_populated("te_full")  # running, version 7, needs_promise_cancellation
    sqlite_insert(Q, conn, [*ACTIVE, full])
    assert cancel_one(conn, "te_2", "ready", 5) == 0  # another status
    assert cancel_one(conn, "te_2", "running", 4) == 0  # a stale version
    assert cancel_one(conn, "te_missing", "running", 5) == 0
    assert read(conn, "te_2") == [ACTIVE[1]]
    assert cancel_one(conn, "te_2", "running", 5) == 1
    assert cancel_one(conn, "te_1", "ready", 2, needs_promise_cancellation=False) == 1
    assert cancel_one(conn, "te_full", "running", 7, needs_promise_cancellation=False) == 1
    assert read(conn, "te_1", "te_2", "te_full") == [
        cancelled_by_user(ACTIVE[0], needs_promise_cancellation=False),
        cancelled_by_user(ACTIVE[1], needs_promise_cancellation=True),
        cancelled_by_user(full, needs_promise_cancellation=False),
    ]
    assert cancel_one(conn, "te_2", "running", 5) == 0  # what it read is gone


def test_cancel_active_task_executions(conn: sqlite3.Connection) -> None:
    sqlite_insert(Q, conn, ACTIVE)
    cancelled = Q.cancel_active_task_executions(
        conn,
        error=json.dumps(CANCEL_ERROR),
        running_here=json.dumps(RUNNING_HERE),
        now=to_epoch_ms(at(70)),
        execution_ids=CANCEL_ASKED,
    )
    assert sorted(cancelled) == ["te_1", "te_2", "te_3", "te_4"]
    assert read(conn, *(e.execution_id for e in ACTIVE)) == [
        *(cancelled_by_parent(e, running_here=e.execution_id in RUNNING_HERE) for e in ACTIVE[:4]),
        ACTIVE[4],
        ACTIVE[5],
    ]
    assert read(conn, "te_2")[0].needs_promise_cancellation is False
    again = Q.cancel_active_task_executions(
        conn,
        error=json.dumps(CANCEL_ERROR),
        running_here="[]",
        now=to_epoch_ms(at(71)),
        execution_ids=CANCEL_ASKED,
    )
    assert again == []


def test_cancel_active_with_nobody_running_here_flags_every_row(conn: sqlite3.Connection) -> None:
    sqlite_insert(Q, conn, ACTIVE)
    Q.cancel_active_task_executions(
        conn,
        error=json.dumps(CANCEL_ERROR),
        running_here="[]",
        now=to_epoch_ms(at(70)),
        execution_ids=["te_2", "te_6"],
    )
    assert read(conn, "te_2", "te_6") == [
        cancelled_by_parent(ACTIVE[1], running_here=False),
        cancelled_by_parent(ACTIVE[5], running_here=False),
    ]


def test_take_cancellation_requests(conn: sqlite3.Connection) -> None:
    sqlite_insert(Q, conn, REQUESTS)

    def take(row_limit: int, now: datetime) -> list[str]:
        return Q.take_cancellation_requests(
            conn, now=to_epoch_ms(now), execution_ids=REQUESTS_ASKED, row_limit=row_limit
        )

    assert sorted(take(2, at(9))) == ["te_1", "te_3"]  # oldest (id) first, up to the limit
    assert take(10, at(10)) == ["te_5"]
    assert take(10, at(11)) == []
    assert Q.take_cancellation_requests(conn, now=0, execution_ids=[], row_limit=10) == []
    taken_at = {"te_1": at(9), "te_3": at(9), "te_5": at(10)}
    assert read(conn, *(e.execution_id for e in REQUESTS)) == [
        replace(e, needs_promise_cancellation=False, updated_at=taken_at[e.execution_id])
        if e.execution_id in taken_at
        else e
        for e in REQUESTS
    ]


def test_fail_unreadable_task_execution(conn: sqlite3.Connection) -> None:
    sqlite_insert(Q, conn, UNREADABLE)
    results = [
        Q.fail_unreadable_task_execution(
            conn,
            error=json.dumps(UNREADABLE_ERROR),
            now=to_epoch_ms(at(90)),
            execution_id=e.execution_id,
        )
        for e in UNREADABLE
    ]
    assert results == [1, 1, 1, 1, 0]
    assert (
        Q.fail_unreadable_task_execution(
            conn, error=json.dumps(UNREADABLE_ERROR), now=0, execution_id="te_missing"
        )
        == 0
    )
    assert read(conn, *(e.execution_id for e in UNREADABLE)) == [
        *(failed_unreadable(e) for e in UNREADABLE[:4]),
        UNREADABLE[4],
    ]


# --- custom table name --------------------------------------------------------------------------


def test_custom_table_has_its_own_indexes_and_leaves_the_default_alone(
    conn: sqlite3.Connection,
) -> None:
    table = "custom_executions"
    assert sqlite_migrate(conn, table) == [m.version for m in lite.MIGRATIONS if m.version > 0]
    db = sqlite_utils.Database(conn)
    assert set(db.table_names()) == {
        "durable_task_executions",
        "durable_task_executions_migrations",
        "durable_task_executions_schedules",
        table,
        f"{table}_migrations",
        f"{table}_schedules",
    }
    assert indexes_of(conn, table) == expected_indexes(table)
    assert indexes_of(conn, "durable_task_executions") == expected_indexes(
        "durable_task_executions"
    )

    custom = lite.Queries(table)
    sqlite_insert(custom, conn, [Execution("te_custom")])
    found = custom.get_task_executions_by_ids(conn, execution_ids=["te_custom"])
    assert [row.execution_id for row in found] == ["te_custom"]
    assert read(conn, "te_custom") == []  # the default table is untouched
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,)
    # The same execution id may exist once per table.
    sqlite_insert(Q, conn, [Execution("te_custom")])


@pytest.mark.parametrize("bad", ["", "1table", "t-x", "t; DROP TABLE x", "a" * 41, "tä"])
def test_invalid_table_names_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid table name"):
        lite.Queries(bad)
    with pytest.raises(ValueError, match="invalid table name"):
        lite.migrations_for_table(bad)


# --- inspection (inspect.sql: the CLI's list and stats) -----------------------------------------

# Insertion order is "newest last"; created_at and start_at deliberately disagree with it.
INSPECTED = [
    Execution("te_1", task_id="a", status="completed", created_at=at(50), start_at=at(50)),
    Execution("te_2", task_id="b", status="ready", created_at=at(10), start_at=at(10)),
    Execution(
        "te_3",
        task_id="a",
        status="ready",
        parent_task_id="b",
        parent_execution_id="te_2",
        is_finalize_task=False,
        root_task_id="b",
        root_execution_id="te_2",
        start_at=at(-5),
    ),
    Execution("te_4", task_id="a", status="failed", created_at=at(30)),
    Execution("te_5", task_id="a", status="ready", start_at=at(-5)),  # ties te_3: later insert
]


def listed(
    conn: sqlite3.Connection,
    *,
    statuses: list[str] | None = None,
    task_id: str | None = None,
    top_level_only: bool = False,
    row_limit: int = 100,
    row_offset: int = 0,
    before_execution_id: str | None = None,
) -> list[str]:
    rows = Q.list_task_executions(
        conn,
        before_execution_id=before_execution_id,
        created_from=None,
        created_before=None,
        filter_statuses=statuses is not None,
        statuses=statuses or [],
        task_id=task_id,
        top_level_only=top_level_only,
        row_limit=row_limit,
        row_offset=row_offset,
    )
    return [row.execution_id for row in rows]


def test_list_task_executions_newest_first_filtered_and_paged(conn: sqlite3.Connection) -> None:
    sqlite_insert(Q, conn, INSPECTED)
    assert listed(conn) == ["te_5", "te_4", "te_3", "te_2", "te_1"]
    assert listed(conn, statuses=["ready"]) == ["te_5", "te_3", "te_2"]
    assert listed(conn, statuses=[]) == []  # an empty slice matches nothing
    assert listed(conn, task_id="a") == ["te_5", "te_4", "te_3", "te_1"]
    assert listed(conn, top_level_only=True) == ["te_5", "te_4", "te_2", "te_1"]
    assert listed(conn, statuses=["ready"], task_id="a", top_level_only=True) == ["te_5"]
    assert listed(conn, row_limit=2) == ["te_5", "te_4"]
    assert listed(conn, row_limit=2, row_offset=3) == ["te_2", "te_1"]
    assert listed(conn, row_limit=0) == []
    assert listed(conn, row_limit=2, before_execution_id="te_4") == ["te_3", "te_2"]
    assert listed(conn, task_id="a", before_execution_id="te_4") == ["te_3", "te_1"]
    assert listed(conn, before_execution_id="te_unknown") == []
    rows = Q.list_task_executions(
        conn,
        before_execution_id=None,
        created_from=None,
        created_before=None,
        filter_statuses=False,
        statuses=[],
        task_id="b",
        top_level_only=False,
        row_limit=1,
        row_offset=0,
    )
    assert [from_sqlite(row) for row in rows] == [INSPECTED[1]]


def test_count_task_executions_by_status(conn: sqlite3.Connection) -> None:
    assert Q.count_task_executions_by_status(conn, task_id=None, top_level_only=False) == []
    sqlite_insert(Q, conn, INSPECTED)
    counts = Q.count_task_executions_by_status(conn, task_id=None, top_level_only=False)
    assert [(r.status, r.execution_count) for r in counts] == [
        ("completed", 1),
        ("failed", 1),
        ("ready", 3),
    ]
    counts = Q.count_task_executions_by_status(conn, task_id="a", top_level_only=True)
    assert [(r.status, r.execution_count) for r in counts] == [
        ("completed", 1),
        ("failed", 1),
        ("ready", 1),
    ]


def test_get_oldest_ready_task_execution(conn: sqlite3.Connection) -> None:
    assert Q.get_oldest_ready_task_execution(conn, task_id=None) is None
    sqlite_insert(Q, conn, INSPECTED)
    oldest = Q.get_oldest_ready_task_execution(conn, task_id=None)
    assert oldest is not None
    assert from_sqlite(oldest) == INSPECTED[2]  # earliest start_at; the tie goes to te_3
    of_b = Q.get_oldest_ready_task_execution(conn, task_id="b")
    assert of_b is not None
    assert of_b.execution_id == "te_2"
    assert Q.get_oldest_ready_task_execution(conn, task_id="c") is None


# --- claim.sql: the set-based claim -------------------------------------------------------------


def claim(
    conn: sqlite3.Connection,
    row_limit: int,
    lease_ms: int = 100,
    queues: list[str] | None = None,
) -> list[Execution]:
    rows = Q.claim_ready_task_executions(
        conn,
        now=to_epoch_ms(at(0)),
        lease_ms=lease_ms,
        row_limit=row_limit,
        any_queue=queues is None,
        queues=json.dumps(queues or []),
    )
    return [from_sqlite(row) for row in sorted(rows, key=lambda r: (r.start_at, r.id))]


def candidates_to_claim(
    conn: sqlite3.Connection, row_limit: int, queues: list[str] | None = None
) -> list[GetReadyTaskExecutionsToClaimRow]:
    rows = Q.get_ready_task_executions_to_claim(
        conn,
        now=to_epoch_ms(at(0)),
        row_limit=row_limit,
        any_queue=queues is None,
        queues=json.dumps(queues or []),
    )
    return rows


def test_claim_ready_task_executions_fifo_limit_and_lease(conn: sqlite3.Connection) -> None:
    sqlite_insert(Q, conn, CLAIMED)
    by_id = {e.execution_id: e for e in CLAIMED}
    first = claim(conn, 3)
    assert [e.execution_id for e in first] == ["te_6", "te_2", "te_5"]
    # start_at == now is due; the future and the running row are not.
    second = claim(conn, 10)
    assert [e.execution_id for e in second] == ["te_4", "te_7"]
    assert claim(conn, 10) == []
    for claimed in [*first, *second]:
        before = by_id[claimed.execution_id]
        assert claimed == expected_after(before, claim_change(before, 100))
    assert read(conn, *by_id) == [
        expected_after(e, claim_change(e, 100)) if e.execution_id not in ("te_1", "te_3") else e
        for e in CLAIMED
    ]


def test_claim_fallback_candidates_and_one_row_claim(conn: sqlite3.Connection) -> None:
    sqlite_insert(Q, conn, CLAIMED)
    by_id = {e.execution_id: e for e in CLAIMED}
    # The same rows in the same order as the set-based claim, and their timeouts.
    candidates = candidates_to_claim(conn, 10)
    assert [c.execution_id for c in candidates] == ["te_6", "te_2", "te_5", "te_4", "te_7"]
    assert [c.timeout_ms for c in candidates] == [
        by_id[c.execution_id].timeout_ms for c in candidates
    ]
    assert len(candidates_to_claim(conn, 2)) == 2
    # One row, claimed exactly like the set-based claim does; then it is no longer ready.
    row = Q.claim_ready_task_execution_by_execution_id(
        conn, now=to_epoch_ms(at(0)), lease_ms=100, execution_id="te_5"
    )
    assert row is not None
    before = by_id["te_5"]
    assert from_sqlite(row) == expected_after(before, claim_change(before, 100))
    again = Q.claim_ready_task_execution_by_execution_id(
        conn, now=to_epoch_ms(at(0)), lease_ms=100, execution_id="te_5"
    )
    assert again is None
    assert (
        Q.claim_ready_task_execution_by_execution_id(
            conn, now=to_epoch_ms(at(0)), lease_ms=100, execution_id="te_1"
        )
        is None
    )  # not ready


def test_claim_filters_queues_and_honours_concurrency_limits(conn: sqlite3.Connection) -> None:
    sqlite_insert(Q, conn, LIMITED)
    expected = ["te_free", "te_a1", "te_a2", "te_mail"]
    assert [c.execution_id for c in candidates_to_claim(conn, 10)] == expected
    assert [c.execution_id for c in candidates_to_claim(conn, 10, ["emails"])] == ["te_mail"]
    assert [e.execution_id for e in claim(conn, 10, queues=["default", "x"])] == expected[:3]
    assert [e.execution_id for e in claim(conn, 10)] == ["te_mail"]
    assert claim(conn, 10) == []  # a and b are full; c is not due


def test_claim_ready_task_executions_limit_zero(conn: sqlite3.Connection) -> None:
    sqlite_insert(Q, conn, CLAIMED)
    assert claim(conn, 0) == []
    assert read(conn, *[e.execution_id for e in CLAIMED]) == CLAIMED


def test_renew_task_execution_leases(conn: sqlite3.Connection) -> None:
    sqlite_insert(Q, conn, RENEWED)
    rows = Q.renew_task_execution_leases(
        conn, expires_at=to_epoch_ms(at(500)), leases=json.dumps(RENEW_ASKED)
    )
    assert rows == ["te_1"]
    assert read(conn, "te_1", "te_2", "te_3", "te_4") == [
        replace(RENEWED[0], expires_at=at(500)),
        *RENEWED[1:],
    ]
    assert Q.renew_task_execution_leases(conn, expires_at=0, leases="{}") == []


def test_claim_ready_task_executions_uses_the_partial_indexes(conn: sqlite3.Connection) -> None:
    plan = conn.execute(
        "EXPLAIN QUERY PLAN " + Q._sql(lite_queries.CLAIM_READY_TASK_EXECUTIONS_SQL),
        {"p1": 0, "p2": 0, "p3": 1, "p4": "[]", "p5": 1},
    ).fetchall()
    searches = [str(row[3]) for row in plan if str(row[3]).startswith("SEARCH")]
    # Each part reads only its own rows: the unlimited part in claim order (priority, then
    # FIFO: no sort before its LIMIT), the limited part the waiting rows under a limit, the
    # count the running ones.
    assert searches == [
        "SEARCH durable_task_executions USING INTEGER PRIMARY KEY (rowid=?)",
        "SEARCH durable_task_executions USING INDEX ix_durable_task_executions_ready_unlimited"
        " (status=?)",
        "SEARCH e USING INDEX ix_durable_task_executions_ready_concurrency (status=?)",
        "SEARCH r USING INDEX ix_durable_task_executions_running_concurrency"
        " (status=? AND task_id=? AND concurrency_key=?)",
    ]


# --- prune.sql: retention -----------------------------------------------------------------------


def prunable(
    conn: sqlite3.Connection,
    *,
    after: tuple[int, int] = (-(2**63), 0),
    statuses: list[str] = FINISHED,
    row_limit: int = 10,
) -> list[SqlitePrunableRoot]:
    return Q.get_prunable_roots(
        conn,
        finished_before=to_epoch_ms(PRUNE_BEFORE),
        after_finished_at=after[0],
        after_id=after[1],
        statuses=statuses,
        row_limit=row_limit,
    )


def test_get_prunable_roots_walks_whole_finished_old_trees(conn: sqlite3.Connection) -> None:
    sqlite_insert(Q, conn, PRUNED)
    assert [r.execution_id for r in prunable(conn)] == PRUNED_TREES
    [first] = prunable(conn, row_limit=1)
    assert (first.execution_id, first.finished_at) == ("te_1", to_epoch_ms(at(10)))
    after = [r.execution_id for r in prunable(conn, after=(first.finished_at, first.id))]
    assert after == ["te_3"]
    assert [r.execution_id for r in prunable(conn, statuses=["failed"])] == ["te_3"]
    assert prunable(conn, statuses=[]) == []


def test_count_and_delete_execution_trees(conn: sqlite3.Connection) -> None:
    sqlite_insert(Q, conn, PRUNED)
    trees = {"root_execution_ids": PRUNED_TREES, "tree_root_execution_ids": PRUNED_TREES}
    counted = Q.count_execution_trees(conn, **trees)
    assert sorted((r.status, r.execution_count) for r in counted) == [
        ("completed", 2),
        ("failed", 1),
    ]
    deleted = Q.delete_execution_trees(conn, **trees)
    assert sorted(r for r in deleted) == ["completed", "completed", "failed"]
    left = read(conn, *[e.execution_id for e in PRUNED])
    assert [e.execution_id for e in left] == ["te_2", "te_2c", "te_4", "te_5"]
    assert Q.delete_execution_trees(conn, root_execution_ids=[], tree_root_execution_ids=[]) == []


def test_get_prunable_roots_walks_the_top_level_index_without_sorting(
    conn: sqlite3.Connection,
) -> None:
    args: dict[str, object] = {"p1": 0, "p2": 0, "p3": 0, "p5": 0, "p6": 1}
    # the statuses slice as one NULL
    sql = lite_queries.GET_PRUNABLE_ROOTS_SQL.format(table=Q.table, p4="NULL")
    plan = conn.execute("EXPLAIN QUERY PLAN " + sql, args).fetchall()
    details = " | ".join(str(row[3]) for row in plan)
    assert "ix_durable_task_executions_top_level_finished_at" in details
    assert "ix_durable_task_executions_root_execution_id" in details
    assert "TEMP B-TREE" not in details


# --- insert.sql and claim.sql: idempotency keys and priorities (migration 0007) -----------------


def holder(conn: sqlite3.Connection, task_id: str, key: str) -> str | None:
    return Q.get_task_execution_id_by_idempotency_key(conn, task_id=task_id, idempotency_key=key)


def test_insert_skips_a_row_whose_key_is_taken(conn: sqlite3.Connection) -> None:
    assert sqlite_insert(Q, conn, [Execution("te_1", idempotency_key="k")]) == 1
    assert sqlite_insert(Q, conn, [Execution("te_2", idempotency_key="k")]) == 0  # held by te_1
    assert sqlite_insert(Q, conn, [Execution("te_3", idempotency_key="k", task_id="other")]) == 1
    assert sqlite_insert(Q, conn, [Execution("te_4"), Execution("te_5")]) == 2  # keyless
    assert holder(conn, "task", "k") == "te_1"
    assert holder(conn, "other", "k") == "te_3"
    assert holder(conn, "task", "none") is None
    assert [e.execution_id for e in read(conn, *(f"te_{i}" for i in range(1, 6)))] == [
        "te_1",
        "te_3",
        "te_4",
        "te_5",
    ]
    # Only the key index is an arbiter: a duplicate id with a free key still raises.
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        sqlite_insert(Q, conn, [Execution("te_1", idempotency_key="free")])


def test_priority_and_key_columns_refuse_other_types(conn: sqlite3.Connection) -> None:
    sqlite_insert(Q, conn, [Execution("te_1")])
    for column, value in (("priority", "'high'"), ("idempotency_key", "X'6b'")):
        with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
            conn.execute(
                f"UPDATE durable_task_executions SET {column} = {value} WHERE execution_id = 'te_1'"
            )


PRIORITIZED = [
    Execution("te_1", priority=0, start_at=at(-3)),
    Execution("te_2", priority=5, start_at=at(-1)),
    Execution("te_3", priority=-2, start_at=at(-9)),
    Execution("te_4", priority=5, start_at=at(-2)),
    Execution("te_5", priority=0, start_at=at(-3)),  # same start_at as te_1: insertion order
    Execution("te_6", priority=9, start_at=at(1)),  # not due
]


def test_claims_take_higher_priorities_first_then_fifo(conn: sqlite3.Connection) -> None:
    sqlite_insert(Q, conn, PRIORITIZED)
    order = ["te_4", "te_2", "te_1", "te_5", "te_3"]
    assert [c.execution_id for c in candidates_to_claim(conn, 10)] == order
    for expected in (order[:3], order[3:]):
        rows = claim(conn, 3)
        assert sorted(row.execution_id for row in rows) == sorted(expected)


# --- schedules ------------------------------------------------------------------------------------


def _register(
    conn: sqlite3.Connection,
    schedule_id: str,
    *,
    cron: str | None,
    every_ms: int | None,
    timezone: str = "UTC",
    next_tick: int,
    now: int,
    run_input: str = "1",
) -> None:
    Q.register_task_schedule(
        conn,
        schedule_id=schedule_id,
        task_id="report",
        cron=cron,
        every_ms=every_ms,
        timezone=timezone,
        run_input=run_input,
        next_tick_at=next_tick,
        now=now,
    )


def _advance(conn: sqlite3.Connection, schedule_id: str, execution_id: str) -> int:
    return Q.advance_task_schedule(
        conn,
        next_tick_at=600,
        last_tick_at=100,
        last_execution_id=execution_id,
        updated_at=101,
        schedule_id=schedule_id,
        expected_next_tick_at=100,
    )


def test_register_task_schedule_inserts_then_keeps_the_next_tick_unless_the_timing_changed(
    conn: sqlite3.Connection,
) -> None:
    _register(conn, "nightly", cron="0 3 * * *", every_ms=None, next_tick=100, now=1)
    [row] = Q.get_task_schedules(conn, schedule_ids=["nightly", "unknown"])
    assert (row.cron, row.every_ms, row.next_tick_at, row.created_at) == ("0 3 * * *", None, 100, 1)
    assert row.last_tick_at is None
    assert row.last_execution_id is None
    # Same timing, new input: the next tick stays (a missed one is still caught up).
    _register(conn, "nightly", cron="0 3 * * *", every_ms=None, next_tick=500, now=2, run_input="2")
    [row] = Q.get_task_schedules(conn, schedule_ids=["nightly"])
    assert (row.next_tick_at, row.run_input, row.created_at, row.updated_at) == (100, "2", 1, 2)
    # New timing (each of cron/every_ms/timezone counts): the new next tick.
    _register(conn, "nightly", cron=None, every_ms=500, next_tick=600, now=3)
    [row] = Q.get_task_schedules(conn, schedule_ids=["nightly"])
    assert (row.cron, row.every_ms, row.next_tick_at) == (None, 500, 600)
    _register(conn, "nightly", cron=None, every_ms=500, timezone="Asia/Tokyo", next_tick=700, now=4)
    [row] = Q.get_task_schedules(conn, schedule_ids=["nightly"])
    assert (row.timezone, row.next_tick_at) == ("Asia/Tokyo", 700)
    assert Q.get_task_schedules(conn, schedule_ids=[]) == []


def test_schedules_need_exactly_one_of_cron_and_every_ms(conn: sqlite3.Connection) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        _register(conn, "both", cron="* * * * *", every_ms=5, next_tick=1, now=1)
    with pytest.raises(sqlite3.IntegrityError):
        _register(conn, "neither", cron=None, every_ms=None, next_tick=1, now=1)


def test_advance_task_schedule_is_a_compare_and_set(conn: sqlite3.Connection) -> None:
    _register(conn, "poll", cron=None, every_ms=500, next_tick=100, now=1)
    assert _advance(conn, "poll", "te_1") == 1
    assert _advance(conn, "poll", "te_2") == 0  # next_tick_at moved on: no match
    assert _advance(conn, "other", "te_3") == 0
    [row] = Q.get_task_schedules(conn, schedule_ids=["poll"])
    assert (row.next_tick_at, row.last_tick_at, row.last_execution_id, row.updated_at) == (
        600,
        100,
        "te_1",
        101,
    )


def test_list_task_schedules_with_the_last_execution_status(conn: sqlite3.Connection) -> None:
    sqlite_insert(Q, conn, [Execution("te_1", status="completed")])
    _register(conn, "b", cron=None, every_ms=500, next_tick=100, now=1)
    _register(conn, "a", cron="0 3 * * *", every_ms=None, next_tick=100, now=1)
    _register(conn, "c", cron=None, every_ms=500, next_tick=100, now=1)
    _advance(conn, "b", "te_1")
    _advance(conn, "c", "te_pruned")
    rows = Q.list_task_schedules(conn)
    assert [(r.schedule_id, r.last_execution_id, r.last_execution_status) for r in rows] == [
        ("a", None, None),
        ("b", "te_1", "completed"),
        ("c", "te_pruned", None),
    ]
    assert rows[1].next_tick_at == 600
