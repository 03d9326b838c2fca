"""The generated PostgreSQL fixture code, executed against a temporary database."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal

import psycopg
import pytest
from psycopg.rows import TupleRow

from codegen.tests.fixtures.golden.postgresql import (
    AsyncQueries,
    Queries,
    migrations_for_table,
)
from codegen.tests.fixtures.golden.postgresql.models import (
    CountByStatusRow,
    DurableTaskExecution,
    JsonValue,
    ListMigrationsRow,
)

Conn = psycopg.AsyncConnection[TupleRow]
T0 = datetime.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=datetime.UTC)


def migrate(url: str, table: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for migration in migrations_for_table(table):
            for statement in migration.statements:
                conn.execute(statement)


@pytest.fixture
async def conn(postgres_url: str) -> AsyncIterator[Conn]:
    migrate(postgres_url, "durable_task_executions")
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as connection:
        yield connection


q = AsyncQueries()


async def insert(
    conn: Conn,
    execution_id: str,
    *,
    status: str = "ready",
    input: JsonValue = None,
    label: str | None = None,
    created_at: datetime.datetime = T0,
    queries: AsyncQueries = q,
) -> DurableTaskExecution:
    row = await queries.insert_task(
        conn,
        execution_id=execution_id,
        status=status,
        input=input,
        meta=None,
        tags=(),
        score=None,
        cost=None,
        trace_id=None,
        payload=None,
        label=label,
        created_at=created_at,
    )
    assert row is not None
    return row


async def test_insert_round_trips_every_type(
    conn: Conn,
) -> None:
    trace = uuid.uuid4()
    document: JsonValue = {"a": [1, 2.5, None, True, "x"], "b": {"c": "d"}}
    row = await q.insert_task(
        conn,
        execution_id="e1",
        status="ready",
        input=document,
        meta=[1, "two"],
        tags=("x", "y"),
        score=0.25,
        cost=Decimal("12.345"),
        trace_id=trace,
        payload=b"\x00\xff",
        label="hello",
        created_at=T0,
    )
    assert row == DurableTaskExecution(
        id=row.id if row else 0,
        execution_id="e1",
        status="ready",
        attempts=0,
        priority=0,
        is_closed=False,
        input=document,
        meta=[1, "two"],
        tags=["x", "y"],
        score=0.25,
        cost=Decimal("12.345"),
        trace_id=trace,
        payload=b"\x00\xff",
        label="hello",
        created_at=T0,
        finished_at=None,
    )


async def test_json_null_and_sql_null(conn: Conn) -> None:
    # `input` is NOT NULL: None is stored as the JSON document `null`. `meta` is nullable:
    # None stays SQL NULL.
    row = await insert(conn, "e1", input=None)
    assert row.input is None
    cur = await conn.execute(
        "SELECT input IS NULL, jsonb_typeof(input), meta IS NULL FROM durable_task_executions"
    )
    assert await cur.fetchone() == (False, "null", True)


async def test_array_parameters_and_optional_array_filter(
    conn: Conn,
) -> None:
    rows = await q.insert_many(
        conn,
        execution_ids=["a", "b", "c"],
        statuses=("ready", "done", "ready"),
        inputs=[{"n": 1}, [2], "three"],
        labels=["first", None, None],  # None elements: array elements are typed `T | None`
        created_at=T0,
    )
    assert [(r.execution_id, r.label) for r in rows] == [("a", "first"), ("b", None), ("c", None)]
    cur = await conn.execute(
        "SELECT execution_id FROM durable_task_executions WHERE label IS NULL ORDER BY id"
    )
    assert await cur.fetchall() == [("b",), ("c",)]  # SQL NULL, not the text 'None'
    found = await q.get_by_execution_ids(conn, execution_ids=("c", "a", "b"), statuses=None)
    assert [(r.execution_id, r.input) for r in found] == [
        ("a", {"n": 1}),
        ("b", [2]),
        ("c", "three"),
    ]
    ready = await q.get_by_execution_ids(conn, execution_ids=["a", "b", "c"], statuses=["ready"])
    assert [r.execution_id for r in ready] == ["a", "c"]
    assert await q.get_by_execution_ids(conn, execution_ids=[], statuses=None) == []


async def test_array_elements_may_be_null(conn: Conn) -> None:
    # All-None arrays still carry their element type (the cast in the SQL) to PostgreSQL.
    rows = await q.insert_many(
        conn, execution_ids=["n"], statuses=["ready"], inputs=[None], labels=[None], created_at=T0
    )
    assert [(r.execution_id, r.label) for r in rows] == [("n", None)]
    # A JSON array element None is the JSON document `null` (JsonValue includes None), which is
    # how a NOT NULL jsonb column can receive it.
    cur = await conn.execute("SELECT jsonb_typeof(input) FROM durable_task_executions")
    assert await cur.fetchall() == [("null",)]
    # A NULL element in an id list matches nothing, and breaks nothing.
    found = await q.get_by_execution_ids(conn, execution_ids=[None, "n"], statuses=[None])
    assert found == []
    found = await q.get_by_execution_ids(conn, execution_ids=[None, "n"], statuses=None)
    assert [r.execution_id for r in found] == ["n"]


def test_array_parameters_admit_null_elements() -> None:
    # Sequence[T | None] for every array parameter (sqlc does not say whether elements may be
    # NULL); JsonValue already includes None. The SQLite slices are not arrays.
    # The annotations as written (get_type_hints would resolve JsonValue's forward references).
    hints = AsyncQueries.insert_many.__annotations__
    assert hints["labels"] == Sequence[str | None]
    assert hints["execution_ids"] == Sequence[str | None]
    assert hints["inputs"] == Sequence[JsonValue]
    optional = AsyncQueries.get_by_execution_ids.__annotations__["statuses"]
    assert optional == Sequence[str | None] | None


async def test_unnamed_parameter_and_untouched_literal(
    conn: Conn,
) -> None:
    # The query's literal holds `$2`, the table name and braces; a row with exactly that label
    # is skipped only if the literal reached PostgreSQL untouched.
    await insert(conn, "tricky", label="durable_task_executions {x} $2")
    plain = await insert(conn, "plain")
    first = await q.get_first_by_status(conn, p1="ready")
    assert first is not None
    assert (first.id, first.status, first.is_closed, first.created_at) == (
        plain.id,
        "ready",
        False,
        T0,
    )
    assert await q.get_first_by_status(conn, p1="nothing") is None


async def test_cte_parameters_bind_by_number(
    conn: Conn,
) -> None:
    # In the text the CTE's parameters come first, but sqlc numbered the UPDATE's first.
    for minute, execution_id in [(3, "newest"), (1, "oldest"), (2, "middle")]:
        await insert(conn, execution_id, created_at=T0 + datetime.timedelta(minutes=minute))
    claimed = await q.claim_batch(conn, to_status="running", from_status="ready", lim=2)
    assert sorted(r.execution_id for r in claimed) == ["middle", "oldest"]
    assert {(r.status, r.attempts) for r in claimed} == {("running", 1)}
    assert await q.claim_batch(conn, to_status="running", from_status="nothing", lim=5) == []


async def test_skip_locked_claims_are_disjoint(postgres_url: str) -> None:
    migrate(postgres_url, "durable_task_executions")
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as setup:
        for i in range(6):
            await insert(setup, f"e{i}", created_at=T0 + datetime.timedelta(seconds=i))
    first = await psycopg.AsyncConnection.connect(postgres_url)
    second = await psycopg.AsyncConnection.connect(postgres_url)
    try:
        # `first` keeps its transaction (and row locks) open while `second` claims.
        a = await q.claim_batch(first, to_status="running", from_status="ready", lim=3)
        b = await asyncio.wait_for(
            q.claim_batch(second, to_status="running", from_status="ready", lim=3), timeout=10
        )
        assert {r.execution_id for r in a} == {"e0", "e1", "e2"}
        assert {r.execution_id for r in b} == {"e3", "e4", "e5"}
        await first.commit()
        await second.commit()
    finally:
        await first.close()
        await second.close()


async def test_execrows_exec_and_aggregates(
    conn: Conn,
) -> None:
    await insert(conn, "a")
    await insert(conn, "b")
    finished = T0 + datetime.timedelta(hours=1)
    updated = await q.set_meta(
        conn, meta={"k": "v"}, finished_at=finished, tags=["t"], execution_id="a"
    )
    assert updated == 1
    assert await q.set_meta(conn, meta=None, finished_at=None, tags=[], execution_id="zz") == 0
    (row,) = await q.get_by_execution_ids(conn, execution_ids=["a"], statuses=None)
    assert (row.meta, row.finished_at, row.tags) == ({"k": "v"}, finished, ["t"])
    assert await q.count_by_status(conn, status="ready") == CountByStatusRow(
        total=2, any_closed=False
    )
    await conn.execute(
        "UPDATE durable_task_executions SET is_closed = true WHERE execution_id = 'b'"
    )
    assert await q.count_by_status(conn, status="ready") == CountByStatusRow(
        total=2, any_closed=True
    )
    await q.delete_closed(conn)
    remaining = await q.get_by_execution_ids(conn, execution_ids=["a", "b"], statuses=None)
    assert [r.execution_id for r in remaining] == ["a"]


async def test_migration_bookkeeping(conn: Conn) -> None:
    await q.record_migration(conn, version=1, name="tasks")
    await q.record_migration(conn, version=0, name="bootstrap")
    await q.record_migration(conn, version=1, name="again")  # ON CONFLICT DO NOTHING
    assert await q.list_migrations(conn) == [
        ListMigrationsRow(version=0, name="bootstrap"),
        ListMigrationsRow(version=1, name="tasks"),
    ]


async def test_custom_table_and_its_derived_objects(postgres_url: str, conn: Conn) -> None:
    migrate(postgres_url, "tenant_b")
    with psycopg.connect(postgres_url, autocommit=True) as again:
        # The bootstrap runs on every migrate, so it must be idempotent.
        for statement in migrations_for_table("tenant_b")[0].statements:
            again.execute(statement)
    custom = AsyncQueries("tenant_b")
    await insert(conn, "default-row")
    await insert(conn, "custom-row", queries=custom)
    found = await custom.get_by_execution_ids(
        conn, execution_ids=["default-row", "custom-row"], statuses=None
    )
    assert [r.execution_id for r in found] == ["custom-row"]
    cur = await conn.execute(
        "SELECT relname FROM pg_class WHERE relname LIKE 'tenant_b%' OR relname LIKE 'ix_tenant_b%'"
    )
    names = {name for (name,) in await cur.fetchall()}
    assert {"tenant_b", "tenant_b_migrations", "ix_tenant_b_status"} <= names
    cur = await conn.execute("SELECT count(*) FROM pg_proc WHERE proname = 'tenant_b_touch'")
    assert await cur.fetchone() == (1,)


async def test_texts_are_stable_so_statements_get_prepared(
    conn: Conn,
) -> None:
    conn.prepare_threshold = 2
    await insert(conn, "a")
    other = AsyncQueries()  # a second object formats the same bytes
    for queries in (q, other, q):
        await queries.count_by_status(conn, status="ready")
    cur = await conn.execute(
        "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%count(*) AS total%'"
    )
    assert await cur.fetchone() == (1,)


def test_sync_twin(postgres_url: str) -> None:
    migrate(postgres_url, "durable_task_executions")
    sync = Queries()
    with psycopg.connect(postgres_url) as conn:
        row = sync.insert_task(
            conn,
            execution_id="s1",
            status="ready",
            input={"sync": True},
            meta=None,
            tags=["a"],
            score=None,
            cost=None,
            trace_id=None,
            payload=None,
            label=None,
            created_at=T0,
        )
        assert row is not None
        assert row.input == {"sync": True}
        claimed = sync.claim_batch(conn, to_status="running", from_status="ready", lim=10)
        assert [r.execution_id for r in claimed] == ["s1"]
        assert sync.set_meta(conn, meta=[1], finished_at=T0, tags=[], execution_id="s1") == 1
        assert sync.count_by_status(conn, status="running") == CountByStatusRow(
            total=1, any_closed=False
        )
        conn.rollback()
        assert sync.count_by_status(conn, status="running") == CountByStatusRow(
            total=0, any_closed=False
        )


def test_the_sync_class_has_only_the_queries_marked_for_a_sync_caller() -> None:
    def methods(cls: type[object]) -> set[str]:
        return {name for name in vars(cls) if not name.startswith("_")}

    assert methods(Queries) == {"insert_task", "claim_batch", "set_meta", "count_by_status"}
    assert methods(Queries) < methods(AsyncQueries)


def test_a_files_opening_comment_is_in_no_docstring() -> None:
    assert AsyncQueries.insert_task.__doc__ == "Insert one execution and return the whole row."


async def test_single_column_results_are_plain_values(conn: Conn) -> None:
    await insert(conn, "a")
    await insert(conn, "b")
    assert await q.list_execution_ids(conn, status="ready") == ["a", "b"]
    assert await q.get_label(conn, execution_id="a") == ""
    assert await q.get_label(conn, execution_id="missing") is None
