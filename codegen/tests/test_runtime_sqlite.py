"""The generated SQLite fixture code, executed against a real SQLite file."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from codegen.tests.fixtures.golden.sqlite import (
    MIGRATIONS,
    Queries,
    migrations_for_table,
    validate_table_name,
)
from codegen.tests.fixtures.golden.sqlite.models import (
    BumpAttemptsRow,
    CountOpenRow,
    DurableTaskExecution,
    GetByStatusesRow,
    ListMigrationsRow,
)


def migrate(conn: sqlite3.Connection, table: str) -> None:
    for migration in migrations_for_table(table):
        for statement in migration.statements:
            conn.execute(statement)


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(tmp_path / "fixture.db", isolation_level=None)
    migrate(connection, "durable_task_executions")
    yield connection
    connection.close()


@pytest.fixture
def q() -> Queries:
    return Queries()


def insert(
    q: Queries,
    conn: sqlite3.Connection,
    execution_id: str,
    *,
    status: str = "ready",
    is_closed: bool = False,
    needs_cancel: bool | None = None,
    score: float | None = None,
    payload: bytes | None = None,
    label: str | None = None,
    cost: float | None = None,
    created_at: int = 1_700_000_000_123,
) -> DurableTaskExecution:
    row = q.insert_task(
        conn,
        execution_id=execution_id,
        status=status,
        is_closed=is_closed,
        needs_cancel=needs_cancel,
        input='{"n": 1}',
        score=score,
        payload=payload,
        label=label,
        cost=cost,
        created_at=created_at,
    )
    assert row is not None
    return row


def test_insert_returns_typed_row(q: Queries, conn: sqlite3.Connection) -> None:
    row = insert(
        q,
        conn,
        "e1",
        is_closed=True,
        needs_cancel=False,
        score=0.5,
        payload=b"\x00\xff",
        cost=12.5,
        label="mine",
    )
    assert row == DurableTaskExecution(
        id=row.id,
        execution_id="e1",
        status="ready",
        attempts=0,
        is_closed=True,
        needs_cancel=False,
        input='{"n": 1}',
        score=0.5,
        payload=b"\x00\xff",
        label="mine",
        cost=12.5,
        created_at=1_700_000_000_123,
        updated_at=1_700_000_000_123,
    )
    assert type(row.is_closed) is bool
    assert type(row.needs_cancel) is bool
    # The AFTER INSERT trigger (split correctly from its migration) fills a missing label,
    # but RETURNING shows the row as inserted.
    assert insert(q, conn, "e2").label is None
    assert conn.execute(
        "SELECT label FROM durable_task_executions WHERE execution_id = 'e2'"
    ).fetchone() == ("open",)


def test_slice_before_a_named_parameter(q: Queries, conn: sqlite3.Connection) -> None:
    for execution_id, status in [("a", "ready"), ("b", "done"), ("c", "ready")]:
        insert(q, conn, execution_id, status=status)
    rows = q.get_by_execution_ids(conn, execution_ids=["c", "a", "b", "zz"], excluded_status="done")
    assert [r.execution_id for r in rows] == ["a", "c"]
    assert q.get_by_execution_ids(conn, execution_ids=[], excluded_status="done") == []


def test_slice_between_named_parameters(q: Queries, conn: sqlite3.Connection) -> None:
    insert(q, conn, "old", status="ready", created_at=1)
    insert(q, conn, "new", status="ready", created_at=100)
    insert(q, conn, "other", status="running", created_at=100)
    rows = q.get_by_statuses(conn, created_after=50, statuses=("ready", "running"), max_attempts=0)
    assert rows == [
        GetByStatusesRow(id=rows[0].id, execution_id="new", is_closed=False),
        GetByStatusesRow(id=rows[1].id, execution_id="other", is_closed=False),
    ]
    assert q.get_by_statuses(conn, created_after=50, statuses=["ready"], max_attempts=-1) == []


def test_bare_parameters_around_a_slice_bind_the_right_values(
    q: Queries, conn: sqlite3.Connection
) -> None:
    # sqlc numbers status=1, attempts=2, the slice 3; a naive `?, ?` expansion of the slice
    # would bind the first id to `attempts` and the second to nothing.
    insert(q, conn, "x", status="ready")
    insert(q, conn, "y", status="ready")
    insert(q, conn, "z", status="done")
    rows = q.get_bare_params(conn, status="ready", attempts=0, execution_ids=["y", "z", "x"])
    assert rows == sorted(rows)
    assert len(rows) == 2
    assert q.get_bare_params(conn, status="ready", attempts=1, execution_ids=["x", "y"]) == []


def test_three_slices_literals_and_empty_slices(q: Queries, conn: sqlite3.Connection) -> None:
    a = insert(q, conn, "a", status="ready")
    b = insert(q, conn, "b", status="running")
    insert(q, conn, "c", status="ready")
    # This label equals the literal in the query: it is excluded only if the literal reached
    # SQLite untouched (its `?1`, table name and braces were not rewritten).
    insert(q, conn, "d", status="ready", label="?1 durable_task_executions {x}")

    def ids(
        *,
        ids: Sequence[str] = ("a", "b", "c", "d"),
        statuses: Sequence[str] = ("ready", "running"),
        excluded: Sequence[str] = ("c",),
        min_attempts: int = 0,
    ) -> list[int]:
        return q.get_two_slices(
            conn, ids=ids, statuses=statuses, excluded=excluded, min_attempts=min_attempts
        )

    assert ids() == [a.id, b.id]
    assert ids(statuses=["running"]) == [b.id]
    assert ids(min_attempts=1) == []
    assert ids(ids=[]) == []  # `IN (NULL)` matches nothing
    assert ids(excluded=[]) == []  # and so does `NOT IN (NULL)`: an empty slice is NULL


def test_numbered_parameters_reused(q: Queries, conn: sqlite3.Connection) -> None:
    low = insert(q, conn, "low", score=0.1)
    high = insert(q, conn, "high", score=0.9)
    unscored = insert(q, conn, "unscored")
    assert q.get_numbered(conn, attempts=0, score=0.5) == [high.id, unscored.id]
    assert q.get_numbered(conn, attempts=0, score=None) == [unscored.id]
    assert q.get_numbered(conn, attempts=-20, score=0.0) == []
    assert low.id not in q.get_numbered(conn, attempts=0, score=0.5)


def test_optional_filter_and_boolean_cast(q: Queries, conn: sqlite3.Connection) -> None:
    assert q.count_open(conn, status=None) == CountOpenRow(total=0, any_closed=False)
    insert(q, conn, "a", status="ready")
    insert(q, conn, "b", status="done", is_closed=True)
    assert q.count_open(conn, status=None) == CountOpenRow(total=2, any_closed=True)
    counted = q.count_open(conn, status="ready")
    assert counted == CountOpenRow(total=1, any_closed=False)
    assert counted is not None
    assert type(counted.any_closed) is bool


def test_execrows_and_exec(q: Queries, conn: sqlite3.Connection) -> None:
    for execution_id in "abc":
        insert(q, conn, execution_id)
    assert q.close_tasks(conn, is_closed=True, now=5, execution_ids=["a", "b", "nope"]) == 2
    assert q.close_tasks(conn, is_closed=True, now=5, execution_ids=[]) == 0
    assert q.bump_attempts(conn, execution_id="c") == BumpAttemptsRow(attempts=1, column_2=False)
    q.bump_attempts(conn, execution_id="c")
    assert q.bump_attempts(conn, execution_id="c") == BumpAttemptsRow(attempts=3, column_2=True)
    assert q.bump_attempts(conn, execution_id="missing") is None
    q.delete_closed(conn)
    remaining = q.get_by_execution_ids(conn, execution_ids=["a", "b", "c"], excluded_status="")
    assert [r.execution_id for r in remaining] == ["c"]


def test_migration_bookkeeping_queries(q: Queries, conn: sqlite3.Connection) -> None:
    for migration in MIGRATIONS:
        q.record_migration(conn, version=migration.version, name=migration.name, applied_at=1)
    q.record_migration(conn, version=1, name="again", applied_at=2)  # INSERT OR IGNORE
    assert q.list_migrations(conn) == [
        ListMigrationsRow(version=0, name="bootstrap"),
        ListMigrationsRow(version=1, name="tasks"),
    ]


def test_custom_table_name_is_a_separate_table(q: Queries, conn: sqlite3.Connection) -> None:
    migrate(conn, "tenant_b")
    for migration in migrations_for_table("tenant_b")[:1]:
        conn.execute(migration.statements[0])  # the bootstrap is idempotent
    custom = Queries("tenant_b")
    assert custom.table == "tenant_b"
    insert(q, conn, "default-row")
    insert(custom, conn, "custom-row")
    assert [
        r.execution_id
        for r in custom.get_by_execution_ids(
            conn, execution_ids=["default-row", "custom-row"], excluded_status=""
        )
    ] == ["custom-row"]
    names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert {"tenant_b", "tenant_b_migrations", "ix_tenant_b_status", "tenant_b_label"} <= names


# The fixture's longest derived name is <table>_migrations: 63 - len("_migrations").
LIMIT = 52


@pytest.mark.parametrize(
    "bad", ["bad-name", "1abc", "x" * (LIMIT + 1), "t; DROP TABLE t", "", "tâble", "a b"]
)
def test_invalid_table_names_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match=r"invalid table name .*must match \^\[A-Za-z_\]"):
        validate_table_name(bad)
    message = (
        f"at most {LIMIT} characters (the longest name derived from it, <table>_migrations, "
        "must fit PostgreSQL's 63-byte identifier limit)"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        Queries(bad)
    with pytest.raises(ValueError, match="invalid table name"):
        migrations_for_table(bad)


def test_longest_valid_table_name(conn: sqlite3.Connection) -> None:
    table = "t" * LIMIT
    assert validate_table_name(table) == table
    migrate(conn, table)
    names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert {table, f"{table}_migrations", f"ix_{table}_status", f"{table}_label"} <= names


def test_single_column_results_are_plain_values(q: Queries, conn: sqlite3.Connection) -> None:
    insert(q, conn, "open")
    insert(q, conn, "closed", is_closed=True)
    assert q.list_closed_flags(conn, execution_ids=["open", "closed"]) == [False, True]
    assert q.list_closed_flags(conn, execution_ids=[]) == []


def test_a_files_opening_comment_is_in_no_docstring() -> None:
    assert Queries.insert_task.__doc__ is None or "fixture" not in Queries.insert_task.__doc__
