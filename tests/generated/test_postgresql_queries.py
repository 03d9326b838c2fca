"""Every generated PostgreSQL query, run against the real server, results checked.

The library is async, so every query is tested through ``AsyncQueries``: on an autocommit
connection (``aconn``), or with explicit transactions for the concurrency tests (SKIP LOCKED
claims, the version guard under READ COMMITTED, the migration lock). The synchronous ``Queries``
holds only the queries marked ``-- @sync`` (the SyncClient's); those are tested in both forms,
the sync one on a second autocommit connection (``conn``), which also sets up rows and reads
them back. ``test_every_generated_query_is_exercised_here`` checks, by reading this file and
``_support.py``, that each method of both classes is called here.
"""

from __future__ import annotations

import ast
import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import psycopg
import pytest
from psycopg import errors

from durable_execution.generated import postgresql as pg
from durable_execution.generated.postgresql._table import TABLE_NAME_MAX_LENGTH
from durable_execution.generated.postgresql.models import DurableTaskExecution
from durable_execution.generated.postgresql.models import GetPrunableRootsRow as PgPrunableRoot
from durable_execution.generated.postgresql.models import (
    LockReadyConcurrencyKeysRow as LockedKey,
)
from durable_execution.storage.migrate import concurrency_lock_key, pruning_lock_key

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
    T0,
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
    from_postgres,
    fully_populated,
    migration_lock_key,
    postgres_changes,
    postgres_insert,
    postgres_insert_args,
    postgres_migrate,
)

Q = pg.Queries()
AQ = pg.AsyncQueries()

Conn = psycopg.Connection[Any]
AsyncConn = psycopg.AsyncConnection[Any]


@pytest.fixture
async def aconn(postgres_url: str) -> AsyncIterator[AsyncConn]:
    """A migrated schema, through an async autocommit connection."""
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as connection:
        await postgres_migrate(connection)
        yield connection


@pytest.fixture
def conn(postgres_url: str, aconn: AsyncConn) -> Iterator[Conn]:
    """The same migrated schema, through a sync autocommit connection."""
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        yield connection


@asynccontextmanager
async def transaction_connection(url: str) -> AsyncIterator[AsyncConn]:
    """A connection whose statements run in one open transaction until commit/rollback."""
    connection = await psycopg.AsyncConnection.connect(url)
    try:
        yield connection
    finally:
        # Roll back before closing: a close alone lets the server release the row locks a moment
        # later, so the next SKIP LOCKED claim in a test could still skip them.
        if not connection.closed:
            await connection.rollback()
        await connection.close()


def read(conn: Conn, *execution_ids: str) -> list[Execution]:
    return [
        from_postgres(row)
        for row in Q.get_task_executions_by_ids(conn, execution_ids=execution_ids)
    ]


async def read_ids(conn: AsyncConn, execution_ids: list[str]) -> list[str]:
    rows = await AQ.get_task_executions_by_ids(conn, execution_ids=execution_ids)
    return [row.execution_id for row in rows]


async def expired(conn: AsyncConn, now: datetime, row_limit: int = 100) -> list[str]:
    rows = await AQ.get_expired_task_executions(conn, now=now, row_limit=row_limit)
    return [row.execution_id for row in rows]


async def locking_unclosed(
    conn: AsyncConn, row_limit: int, execution_ids: list[str] | None
) -> list[DurableTaskExecution]:
    """The locking rows query: of every finished unclosed row, or among ``execution_ids``."""
    if execution_ids is None:
        return await AQ.get_finished_unclosed_task_executions(conn, row_limit=row_limit)
    return await AQ.get_finished_unclosed_task_executions_by_ids(
        conn, execution_ids=execution_ids, row_limit=row_limit
    )


async def unclosed(
    conn: AsyncConn, row_limit: int = 100, execution_ids: list[str] | None = None
) -> list[str]:
    """The (locking) rows query, and the ids query when it applies (no ids given); they must
    agree."""
    rows = await locking_unclosed(conn, row_limit, execution_ids)
    found = [row.execution_id for row in rows]
    if execution_ids is None:
        ids = await AQ.get_finished_unclosed_task_execution_ids(conn, row_limit=row_limit)
        assert ids == found
    return found


EachPair = tuple[int, str, list[str] | None, bool | None, int | None, Change]


def each_args(pairs: list[EachPair]) -> dict[str, Any]:
    """UpdateTaskExecutionsEach arrays from (item, id, statuses, npc, version, change) pairs."""
    changes = [postgres_changes(change) for *_, change in pairs]
    args: dict[str, Any] = {
        "item_index": [p[0] for p in pairs],
        "execution_id": [p[1] for p in pairs],
        "statuses": [p[2] for p in pairs],
        "needs_promise_cancellation": [p[3] for p in pairs],
        "version": [p[4] for p in pairs],
    }
    for key in postgres_changes(Change(updated_at=T0)):
        args[key] = [c[key] for c in changes]  # type: ignore[literal-required]
    return args


async def update_by_ids(
    conn: AsyncConn,
    execution_ids: list[str],
    change: Change,
    *,
    statuses: list[str] | None = None,
    needs_promise_cancellation: bool | None = None,
    version: int | None = None,
) -> int:
    """One guarded update of ``execution_ids`` through UpdateTaskExecutionsEach: the rows it
    changed."""
    pairs: list[EachPair] = [
        (0, execution_id, statuses, needs_promise_cancellation, version, change)
        for execution_id in execution_ids
    ]
    rows = await AQ.update_task_executions_each(conn, **each_args(pairs))
    assert set(rows) <= {0}
    return len(rows)


EVERY_QUERY = {
    "insert_task_executions",
    "get_task_execution_ids_by_idempotency_keys",
    "lock_migrations",
    "get_applied_migration_versions",
    "insert_applied_migration",
    "notify_ready",
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
    "list_task_executions",
    "count_task_executions_by_status",
    "get_oldest_ready_task_execution",
    "lock_ready_concurrency_keys",
    "claim_ready_task_executions",
    "get_ready_task_executions_to_claim",
    "claim_ready_task_execution_by_execution_id",
    "update_task_executions_each",
    "get_prunable_roots",
    "count_execution_trees",
    "delete_execution_trees",
    "renew_task_execution_leases",
    "try_lock_pruning",
    "register_task_schedule",
    "get_task_schedules",
    "advance_task_schedule",
    "list_task_schedules",
}


def public_methods(queries_class: type[object]) -> set[str]:
    return {name for name in dir(queries_class) if not name.startswith("_")} - {"table"}


class _QueryCalls(ast.NodeVisitor):
    """The methods called on ``pg.Queries`` / ``pg.AsyncQueries`` objects in a module, by class.

    An object is known by its name: one assigned ``pg.Queries(...)`` / ``pg.AsyncQueries(...)``
    (at module level or in an enclosing function), or a parameter annotated with the class.
    """

    def __init__(self) -> None:
        self.scope: dict[str, str] = {}
        self.called: dict[str, set[str]] = {"Queries": set(), "AsyncQueries": set()}

    def _class_of(self, node: ast.expr | None) -> str | None:
        if isinstance(node, ast.Call):
            node = node.func
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "pg"
            and node.attr in self.called
        ):
            return node.attr
        return None

    def _bound(self, body: list[ast.stmt], args: list[ast.arg]) -> dict[str, str]:
        bound = {arg.arg: kind for arg in args if (kind := self._class_of(arg.annotation))}
        pending: list[ast.AST] = list(body)
        while pending:
            node = pending.pop()
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue  # its own scope
            if isinstance(node, ast.Assign) and (kind := self._class_of(node.value)):
                bound.update({t.id: kind for t in node.targets if isinstance(t, ast.Name)})
            pending.extend(ast.iter_child_nodes(node))
        return bound

    def visit_Module(self, node: ast.Module) -> None:
        self.scope = self._bound(node.body, [])
        self.generic_visit(node)

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        outer = self.scope
        args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
        self.scope = {**outer, **self._bound(node.body, args)}
        self.generic_visit(node)
        self.scope = outer

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Name) and node.value.id in self.scope:
            self.called[self.scope[node.value.id]].add(node.attr)
        self.generic_visit(node)


def called_query_methods() -> dict[str, set[str]]:
    calls = _QueryCalls()
    for name in (__file__, "_support.py"):
        path = Path(__file__).with_name(Path(name).name)
        calls.visit(ast.parse(path.read_text(encoding="utf-8")))
    return calls.called


def test_every_generated_query_is_exercised_here() -> None:
    # A new named query must come with tests: extend this file, then EVERY_QUERY. Every query
    # is tested async; the ones marked `-- @sync` (the sync class's) are tested sync as well.
    assert public_methods(pg.AsyncQueries) == EVERY_QUERY
    sync_queries = public_methods(pg.Queries)
    assert sync_queries < EVERY_QUERY
    called = called_query_methods()
    untested_async = sorted(EVERY_QUERY - called["AsyncQueries"])
    assert untested_async == [], f"AsyncQueries methods no test here calls: {untested_async}"
    untested_sync = sorted(sync_queries - called["Queries"])
    assert untested_sync == [], f"sync Queries methods no test here calls: {untested_sync}"


# --- migrations ---------------------------------------------------------------------------------


def tables_of(conn: Conn) -> set[str]:
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    ).fetchall()
    return {row[0] for row in rows}


def indexes_of(conn: Conn, table: str) -> dict[str, tuple[list[str], bool]]:
    """Index name -> (columns, unique), primary key excluded."""
    rows = conn.execute(
        "SELECT i.relname, ix.indisunique, "
        "       array_agg(a.attname ORDER BY k.ordinality) "
        "FROM pg_index ix "
        "JOIN pg_class i ON i.oid = ix.indexrelid "
        "JOIN pg_class t ON t.oid = ix.indrelid "
        "JOIN pg_namespace n ON n.oid = t.relnamespace "
        "CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ordinality) "
        "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum "
        "WHERE n.nspname = current_schema() AND t.relname = %s AND NOT ix.indisprimary "
        "GROUP BY i.relname, ix.indisunique",
        [table],
    ).fetchall()
    return {name: (list(columns), unique) for name, unique, columns in rows}


def expected_indexes(table: str) -> dict[str, tuple[list[str], bool]]:
    indexes = {name.format(t=table): spec for name, spec in INDEXES.items()}
    return {**indexes, f"ix_{table}_ready_concurrency": READY_CONCURRENCY_INDEX["postgresql"]}


async def test_migrations_create_the_tables_and_indexes_and_record_versions(
    conn: Conn, aconn: AsyncConn
) -> None:
    assert tables_of(conn) == {
        "durable_task_executions",
        "durable_task_executions_migrations",
        "durable_task_executions_schedules",
    }
    assert indexes_of(conn, "durable_task_executions") == expected_indexes(
        "durable_task_executions"
    )
    numbered = [m.version for m in pg.MIGRATIONS if m.version > 0]
    assert numbered
    assert await AQ.get_applied_migration_versions(aconn) == numbered


async def test_migrating_again_applies_nothing_and_keeps_the_data(
    conn: Conn, aconn: AsyncConn
) -> None:
    postgres_insert(Q, conn, [Execution("te_1")])
    assert await postgres_migrate(aconn) == []
    numbered = [m.version for m in pg.MIGRATIONS if m.version > 0]
    assert list(await AQ.get_applied_migration_versions(aconn)) == numbered
    assert [e.execution_id for e in read(conn, "te_1")] == ["te_1"]


async def test_insert_applied_migration_records_name_and_time(postgres_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as connection:
        bootstrap = next(m for m in pg.migrations_for_table("x") if m.version == 0)
        for statement in bootstrap.statements:
            await connection.execute(statement)
        aqueries = pg.AsyncQueries("x")
        assert await aqueries.get_applied_migration_versions(connection) == []
        await aqueries.insert_applied_migration(
            connection, version=7, name="seven", applied_at=at(1)
        )
        await aqueries.insert_applied_migration(
            connection, version=3, name="three", applied_at=at(2)
        )
        assert list(await aqueries.get_applied_migration_versions(connection)) == [3, 7]
        cursor = await connection.execute("SELECT version, name, applied_at FROM x_migrations")
        stored = await cursor.fetchall()
        assert sorted(stored) == [(3, "three", at(2)), (7, "seven", at(1))]
        with pytest.raises(errors.UniqueViolation):
            await aqueries.insert_applied_migration(
                connection, version=7, name="again", applied_at=T0
            )


async def test_the_migration_lock_serialises_migrators(postgres_url: str) -> None:
    key = migration_lock_key("durable_task_executions")
    async with (
        transaction_connection(postgres_url) as first,
        transaction_connection(postgres_url) as second,
    ):
        await AQ.lock_migrations(first, lock_key=key)
        await second.execute("SET lock_timeout = '200ms'")
        with pytest.raises(errors.LockNotAvailable):
            await AQ.lock_migrations(second, lock_key=key)
        await second.rollback()
        # Another table's key is independent.
        await AQ.lock_migrations(second, lock_key=migration_lock_key("other_table"))
        await second.rollback()
        # Committing releases the transaction-scoped lock.
        await first.commit()
        await second.execute("SET lock_timeout = '200ms'")
        await AQ.lock_migrations(second, lock_key=key)
        await second.commit()


async def test_the_pruning_lock_is_taken_without_waiting_and_released_at_commit(
    postgres_url: str,
) -> None:
    key = pruning_lock_key("durable_task_executions")
    assert key != migration_lock_key("durable_task_executions")
    async with (
        transaction_connection(postgres_url) as first,
        transaction_connection(postgres_url) as second,
    ):
        assert await AQ.try_lock_pruning(first, lock_key=key) is True
        # No wait: refused at once.
        assert await AQ.try_lock_pruning(second, lock_key=key) is False
        other = await AQ.try_lock_pruning(second, lock_key=pruning_lock_key("other_table"))
        assert other is True
        await second.rollback()
        await first.commit()  # releases the transaction-scoped lock
        assert await AQ.try_lock_pruning(second, lock_key=key) is True
        await second.commit()


# --- notify ------------------------------------------------------------------------------------


def test_notify_ready_is_delivered_at_commit_and_never_after_a_rollback(postgres_url: str) -> None:
    with (
        psycopg.connect(postgres_url, autocommit=True) as listener,
        psycopg.connect(postgres_url) as sender,
    ):
        for channel in ("Rolled_back", "Committed", "marker"):
            listener.execute(f'LISTEN "{channel}"')
        Q.notify_ready(sender, channel="Rolled_back")
        sender.rollback()
        Q.notify_ready(sender, channel="Committed")
        Q.notify_ready(sender, channel="Committed")  # folded: one transaction, same payload
        sender.commit()
        Q.notify_ready(sender, channel="Committed")
        sender.commit()
        Q.notify_ready(sender, channel="marker")
        sender.commit()
        # Delivered in commit order: whatever was sent before the marker arrives before it.
        received = list(listener.notifies(timeout=10, stop_after=3))
        assert [(n.channel, n.payload) for n in received] == [
            ("Committed", ""),
            ("Committed", ""),
            ("marker", ""),
        ]


# --- insert and round trips ---------------------------------------------------------------------


def test_every_column_round_trips(conn: Conn) -> None:
    full = fully_populated("te_full")
    minimal = Execution("te_minimal")
    assert postgres_insert(Q, conn, [full, minimal]) == ["te_full", "te_minimal"]
    assert read(conn, "te_full", "te_minimal") == [full, minimal]


def test_timestamps_keep_milliseconds_and_come_back_aware(conn: Conn) -> None:
    postgres_insert(Q, conn, [fully_populated("te_full")])
    (row,) = Q.get_task_executions_by_ids(conn, execution_ids=["te_full"])
    assert row.start_at == at(1)
    assert row.start_at.microsecond == 892_000
    assert all(
        moment is not None and moment.utcoffset() is not None
        for moment in (row.start_at, row.started_at, row.expires_at, row.created_at)
    )


def test_json_columns_are_jsonb_and_json_null_is_stored_as_sql_null(conn: Conn) -> None:
    postgres_insert(Q, conn, [fully_populated("te_full"), Execution("te_minimal")])
    rows = conn.execute(
        "SELECT execution_id, jsonb_typeof(retry_options), jsonb_typeof(children_tasks), "
        "children_tasks IS NULL, pg_typeof(children_tasks)::text "
        "FROM durable_task_executions ORDER BY id"
    ).fetchall()
    assert rows == [
        ("te_full", "object", "array", False, "jsonb"),
        ("te_minimal", "object", None, True, "jsonb"),
    ]


async def test_insert_keeps_array_order_and_an_empty_batch_inserts_nothing(
    conn: Conn, aconn: AsyncConn
) -> None:
    assert postgres_insert(Q, conn, []) == []
    batch = [Execution("te_c"), Execution("te_a"), Execution("te_b")]
    assert sorted(postgres_insert(Q, conn, batch)) == ["te_a", "te_b", "te_c"]
    # Reads by id return insertion (id) order: the order of the arrays.
    found = await read_ids(aconn, ["te_a", "te_b", "te_c"])
    assert found == ["te_c", "te_a", "te_b"]


async def test_a_large_batch_is_one_statement(conn: Conn, aconn: AsyncConn) -> None:
    batch = [Execution(f"te_{i:04}", start_at=at(i)) for i in range(1000)]
    assert len(postgres_insert(Q, conn, batch)) == 1000
    assert await read_ids(aconn, ["te_0002", "te_0999", "te_0000"]) == [
        "te_0000",
        "te_0002",
        "te_0999",
    ]


def test_duplicate_execution_id_raises_and_stores_nothing(conn: Conn) -> None:
    postgres_insert(Q, conn, [Execution("te_1")])
    with pytest.raises(errors.UniqueViolation):
        postgres_insert(Q, conn, [Execution("te_2"), Execution("te_1", task_id="other")])
    with pytest.raises(errors.UniqueViolation):  # a duplicate inside one batch
        postgres_insert(Q, conn, [Execution("te_3"), Execution("te_3")])
    assert read(conn, "te_1", "te_2", "te_3") == [Execution("te_1")]


@pytest.mark.parametrize(
    "execution",
    [
        Execution("te_x", parent_task_id="p", parent_execution_id="te_p"),  # no is_finalize_task
        Execution("te_x", parent_task_id="p", is_finalize_task=False),  # half a parent
        Execution("te_x", root_task_id="r"),  # half a root
        Execution("te_x", status="paused"),
    ],
)
def test_schema_rejects_inconsistent_records(conn: Conn, execution: Execution) -> None:
    with pytest.raises(errors.CheckViolation):
        postgres_insert(Q, conn, [execution])


# --- reads by id (select.sql) ------------------------------------------------------------------


async def test_get_task_executions_by_ids_in_insertion_order(conn: Conn, aconn: AsyncConn) -> None:
    postgres_insert(Q, conn, BY_IDS)
    asked = [*ASKED, "te_2"]
    rows = await AQ.get_task_executions_by_ids(aconn, execution_ids=asked)
    # Id order, not the asked order; unknown ids left out, a repeated one returned once.
    assert [from_postgres(row) for row in rows] == BY_IDS[:4]
    assert [
        from_postgres(row) for row in Q.get_task_executions_by_ids(conn, execution_ids=asked)
    ] == BY_IDS[:4]
    assert all(type(row.is_closed) is bool and row.start_at.utcoffset() is not None for row in rows)
    assert await AQ.get_task_executions_by_ids(aconn, execution_ids=[]) == []
    assert Q.get_task_executions_by_ids(conn, execution_ids=[]) == []


async def test_get_finished_task_execution_ids(conn: Conn, aconn: AsyncConn) -> None:
    postgres_insert(Q, conn, FINISHING)
    asked = [f"te_{i}" for i in range(9, 0, -1)] + ["te_missing", "te_1"]
    found = await AQ.get_finished_task_execution_ids(aconn, execution_ids=asked)
    assert found == FINISHED_IDS  # closed or not, in id order
    assert all(type(execution_id) is str for execution_id in found)
    assert await AQ.get_finished_task_execution_ids(aconn, execution_ids=["te_2", "te_8"]) == []
    assert await AQ.get_finished_task_execution_ids(aconn, execution_ids=[]) == []


async def test_get_expired_task_executions(conn: Conn, aconn: AsyncConn) -> None:
    postgres_insert(Q, conn, EXPIRING)
    rows = await AQ.get_expired_task_executions(aconn, now=EXPIRY, row_limit=100)
    # Whole rows, oldest updated_at first (te_1 and te_6 tie: insertion order).
    by_id = {e.execution_id: e for e in EXPIRING}
    assert [from_postgres(row) for row in rows] == [by_id[i] for i in EXPIRED]
    assert all(
        row.expires_at is not None and row.expires_at.utcoffset() is not None for row in rows
    )
    # Strictly before now: te_7's lease ends at EXPIRY exactly.
    assert await expired(aconn, at(201)) == ["te_7", *EXPIRED]
    assert await expired(aconn, at(100)) == []
    assert await expired(aconn, at(101)) == ["te_1"]


@pytest.mark.parametrize("row_limit", [1, 2, 3, 100])
async def test_the_limits_of_the_named_reads(conn: Conn, aconn: AsyncConn, row_limit: int) -> None:
    postgres_insert(Q, conn, EXPIRING)
    assert await expired(aconn, EXPIRY, row_limit) == EXPIRED[:row_limit]
    conn.execute("DELETE FROM durable_task_executions")
    postgres_insert(Q, conn, FINISHING)
    assert await unclosed(aconn, row_limit) == UNCLOSED[:row_limit]
    among = await unclosed(aconn, row_limit, ["te_9", "te_1", "te_7"])
    assert among == ["te_1", "te_7", "te_9"][:row_limit]
    conn.execute("DELETE FROM durable_task_executions")
    postgres_insert(Q, conn, REQUESTS)
    taken = await AQ.take_cancellation_requests(
        aconn, now=at(9), execution_ids=REQUESTS_ASKED, row_limit=row_limit
    )
    assert sorted(taken) == ["te_1", "te_3", "te_5"][:row_limit]


async def test_get_finished_unclosed_task_executions(conn: Conn, aconn: AsyncConn) -> None:
    postgres_insert(Q, conn, FINISHING)
    rows = await AQ.get_finished_unclosed_task_executions(aconn, row_limit=100)
    by_id = {e.execution_id: e for e in FINISHING}
    assert [from_postgres(row) for row in rows] == [by_id[i] for i in UNCLOSED]
    # Only among the ids given, still finished and unclosed (te_2 is active, te_3 closed).
    among = await unclosed(aconn, execution_ids=["te_9", "te_3", "te_2", "te_4", "te_missing"])
    assert among == ["te_4", "te_9"]
    assert await unclosed(aconn, execution_ids=[]) == []  # an empty list is not "any row"
    assert await AQ.get_finished_unclosed_task_execution_ids(aconn, row_limit=100) == UNCLOSED


# --- updates (update.sql: UpdateTaskExecutionsEach, one guarded update) -------------------------


async def test_update_writes_every_given_column_and_nothing_else(
    conn: Conn, aconn: AsyncConn
) -> None:
    full, other = fully_populated("te_full"), fully_populated("te_other")
    postgres_insert(Q, conn, [full, other])
    assert await update_by_ids(aconn, ["te_full"], EVERY_CHANGE) == 1
    assert read(conn, "te_full", "te_other") == [expected_after(full, EVERY_CHANGE), other]


async def test_update_with_no_values_only_writes_updated_at(conn: Conn, aconn: AsyncConn) -> None:
    full = fully_populated("te_full")
    postgres_insert(Q, conn, [full])
    assert await update_by_ids(aconn, ["te_full"], Change(updated_at=at(77))) == 1
    assert read(conn, "te_full") == [replace(full, updated_at=at(77))]


async def test_update_can_write_false_zero_and_empty_json(conn: Conn, aconn: AsyncConn) -> None:
    full = fully_populated("te_full")  # is_closed and needs_promise_cancellation are True
    postgres_insert(Q, conn, [full])
    change = Change(
        updated_at=at(5),
        is_closed=False,
        needs_promise_cancellation=False,
        retry_attempts=0,
        children_tasks=[],
        finalize_task={},
    )
    assert await update_by_ids(aconn, ["te_full"], change) == 1
    assert read(conn, "te_full") == [expected_after(full, change)]


@pytest.mark.parametrize("also_given", [False, True])
async def test_unset_error_and_expires_at(conn: Conn, aconn: AsyncConn, also_given: bool) -> None:
    full = fully_populated("te_full")
    postgres_insert(Q, conn, [full])
    change = Change(
        updated_at=at(9),
        unset_error=True,
        unset_expires_at=True,
        # When a new value is given too, unsetting still wins.
        error={"error_type": "generic", "message": "x"} if also_given else None,
        expires_at=at(10) if also_given else None,
    )
    assert await update_by_ids(aconn, ["te_full"], change) == 1
    assert read(conn, "te_full") == [replace(full, error=None, expires_at=None, updated_at=at(9))]


async def test_version_guard(conn: Conn, aconn: AsyncConn) -> None:
    postgres_insert(Q, conn, [Execution("te_1", version=3)])
    stale = Change(updated_at=at(1), status="running", version=3)
    assert await update_by_ids(aconn, ["te_1"], stale, version=2) == 0
    assert read(conn, "te_1") == [Execution("te_1", version=3)]

    current = Change(updated_at=at(2), status="running", version=4)
    assert await update_by_ids(aconn, ["te_1"], current, version=3) == 1
    assert read(conn, "te_1") == [Execution("te_1", version=4, status="running", updated_at=at(2))]
    assert await update_by_ids(aconn, ["te_1"], Change(updated_at=at(3), version=5), version=3) == 0


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
async def test_update_guards(
    conn: Conn,
    aconn: AsyncConn,
    statuses: list[str] | None,
    needs_promise_cancellation: bool | None,
    version: int | None,
    expected: list[str],
) -> None:
    postgres_insert(Q, conn, BY_IDS)
    count = await update_by_ids(
        aconn,
        ASKED,
        Change(updated_at=at(99)),
        statuses=statuses,
        needs_promise_cancellation=needs_promise_cancellation,
        version=version,
    )
    assert count == len(expected)
    after = read(conn, *ASKED, "te_5")
    assert [e.execution_id for e in after if e.updated_at == at(99)] == expected


async def test_update_by_execution_ids_filters(conn: Conn, aconn: AsyncConn) -> None:
    postgres_insert(Q, conn, BY_IDS)
    cancel = Change(updated_at=at(50), status="cancelled", needs_promise_cancellation=True)
    assert await update_by_ids(aconn, ASKED, cancel, statuses=["ready", "running"]) == 3
    assert await update_by_ids(aconn, ASKED, cancel, statuses=[]) == 0
    assert await update_by_ids(aconn, ASKED, Change(updated_at=at(60)), statuses=["completed"]) == 1
    not_flagged = await update_by_ids(
        aconn, ASKED, Change(updated_at=at(70)), needs_promise_cancellation=False
    )
    assert not_flagged == 1
    assert await update_by_ids(aconn, [], Change(updated_at=at(80))) == 0
    after = {e.execution_id: (e.status, e.updated_at) for e in read(conn, *ASKED, "te_5")}
    assert after == {
        "te_1": ("cancelled", at(50)),
        "te_2": ("cancelled", at(50)),
        "te_3": ("completed", at(70)),
        "te_4": ("cancelled", at(50)),
        "te_5": ("ready", BY_IDS[4].updated_at),
    }


# --- the closer's and the cancels' writes (close.sql, cancel.sql, update.sql) ------------------


async def test_close_task_executions_writes_is_closed_and_updated_at(
    conn: Conn, aconn: AsyncConn
) -> None:
    postgres_insert(Q, conn, FINISHING)
    count = await AQ.close_task_executions(
        aconn, now=at(60), execution_ids=["te_4", "te_missing", "te_1"]
    )
    assert count == 2
    assert type(count) is int
    closed = {"te_4", "te_1"}
    assert read(conn, *(e.execution_id for e in FINISHING)) == [
        replace(e, is_closed=True, updated_at=at(60)) if e.execution_id in closed else e
        for e in FINISHING
    ]
    assert await unclosed(aconn) == ["te_6", "te_5", "te_7", "te_9"]
    assert await AQ.close_task_executions(aconn, now=at(61), execution_ids=[]) == 0


async def test_postpone_closing_only_moves_updated_at(conn: Conn, aconn: AsyncConn) -> None:
    postgres_insert(Q, conn, FINISHING)
    count = await AQ.postpone_closing_task_executions(
        aconn, now=at(60), execution_ids=["te_4", "te_missing"]
    )
    assert count == 1
    assert read(conn, "te_4") == [replace(FINISHING[3], updated_at=at(60))]
    assert await unclosed(aconn) == ["te_6", "te_1", "te_5", "te_7", "te_9", "te_4"]
    assert await AQ.postpone_closing_task_executions(aconn, now=at(61), execution_ids=[]) == 0


async def cancel_one(
    conn: AsyncConn,
    execution_id: str,
    status: str,
    version: int,
    *,
    needs_promise_cancellation: bool = True,
) -> int:
    return await AQ.cancel_task_execution(
        conn,
        error=CANCEL_ERROR,
        needs_promise_cancellation=needs_promise_cancellation,
        now=at(80),
        execution_id=execution_id,
        expected_status=status,
        expected_version=version,
    )


async def test_cancel_task_execution_is_guarded_by_status_and_version(
    conn: Conn, aconn: AsyncConn
) -> None:
    full = fully_populated("te_full")  # running, version 7, needs_promise_cancellation
    postgres_insert(Q, conn, [*ACTIVE, full])
    assert await cancel_one(aconn, "te_2", "ready", 5) == 0  # another status
    assert await cancel_one(aconn, "te_2", "running", 4) == 0  # a stale version
    assert await cancel_one(aconn, "te_missing", "running", 5) == 0
    assert read(conn, "te_2") == [ACTIVE[1]]
    assert await cancel_one(aconn, "te_2", "running", 5) == 1
    assert await cancel_one(aconn, "te_1", "ready", 2, needs_promise_cancellation=False) == 1
    assert await cancel_one(aconn, "te_full", "running", 7, needs_promise_cancellation=False) == 1
    assert read(conn, "te_1", "te_2", "te_full") == [
        cancelled_by_user(ACTIVE[0], needs_promise_cancellation=False),
        cancelled_by_user(ACTIVE[1], needs_promise_cancellation=True),
        cancelled_by_user(full, needs_promise_cancellation=False),
    ]
    assert await cancel_one(aconn, "te_2", "running", 5) == 0  # what it read is gone


def test_cancel_task_execution_sync(conn: Conn) -> None:
    postgres_insert(Q, conn, ACTIVE)

    def cancel(status: str, version: int) -> int:
        return Q.cancel_task_execution(
            conn,
            error=CANCEL_ERROR,
            needs_promise_cancellation=True,
            now=at(80),
            execution_id="te_1",
            expected_status=status,
            expected_version=version,
        )

    assert cancel("ready", 1) == 0
    assert cancel("ready", 2) == 1
    assert cancel("ready", 2) == 0
    assert read(conn, "te_1") == [cancelled_by_user(ACTIVE[0], needs_promise_cancellation=True)]


async def test_cancel_active_task_executions(conn: Conn, aconn: AsyncConn) -> None:
    postgres_insert(Q, conn, ACTIVE)
    cancelled = await AQ.cancel_active_task_executions(
        aconn, error=CANCEL_ERROR, running_here=RUNNING_HERE, now=at(70), execution_ids=CANCEL_ASKED
    )
    assert sorted(cancelled) == ["te_1", "te_2", "te_3", "te_4"]
    assert read(conn, *(e.execution_id for e in ACTIVE)) == [
        *(cancelled_by_parent(e, running_here=e.execution_id in RUNNING_HERE) for e in ACTIVE[:4]),
        ACTIVE[4],
        ACTIVE[5],
    ]
    again = await AQ.cancel_active_task_executions(
        aconn, error=CANCEL_ERROR, running_here=[], now=at(71), execution_ids=CANCEL_ASKED
    )
    assert again == []


async def test_cancel_active_with_nobody_running_here_flags_every_row(
    conn: Conn, aconn: AsyncConn
) -> None:
    postgres_insert(Q, conn, ACTIVE)
    await AQ.cancel_active_task_executions(
        aconn, error=CANCEL_ERROR, running_here=[], now=at(70), execution_ids=["te_2", "te_6"]
    )
    assert read(conn, "te_2", "te_6") == [
        cancelled_by_parent(ACTIVE[1], running_here=False),
        cancelled_by_parent(ACTIVE[5], running_here=False),
    ]


async def test_take_cancellation_requests(conn: Conn, aconn: AsyncConn) -> None:
    postgres_insert(Q, conn, REQUESTS)

    async def take(row_limit: int, now: datetime) -> list[str]:
        return await AQ.take_cancellation_requests(
            aconn, now=now, execution_ids=REQUESTS_ASKED, row_limit=row_limit
        )

    assert sorted(await take(2, at(9))) == ["te_1", "te_3"]  # oldest (id) first, up to the limit
    assert await take(10, at(10)) == ["te_5"]
    assert await take(10, at(11)) == []
    assert await AQ.take_cancellation_requests(aconn, now=T0, execution_ids=[], row_limit=10) == []
    taken_at = {"te_1": at(9), "te_3": at(9), "te_5": at(10)}
    assert read(conn, *(e.execution_id for e in REQUESTS)) == [
        replace(e, needs_promise_cancellation=False, updated_at=taken_at[e.execution_id])
        if e.execution_id in taken_at
        else e
        for e in REQUESTS
    ]


async def test_fail_unreadable_task_execution(conn: Conn, aconn: AsyncConn) -> None:
    postgres_insert(Q, conn, UNREADABLE)
    results = [
        await AQ.fail_unreadable_task_execution(
            aconn, error=UNREADABLE_ERROR, now=at(90), execution_id=e.execution_id
        )
        for e in UNREADABLE
    ]
    assert results == [1, 1, 1, 1, 0]
    missing = await AQ.fail_unreadable_task_execution(
        aconn, error=UNREADABLE_ERROR, now=at(90), execution_id="te_missing"
    )
    assert missing == 0
    assert read(conn, *(e.execution_id for e in UNREADABLE)) == [
        *(failed_unreadable(e) for e in UNREADABLE[:4]),
        UNREADABLE[4],
    ]


# --- concurrency: SKIP LOCKED and the guards under READ COMMITTED --------------------------------


async def test_concurrent_expiry_reads_with_skip_locked_are_disjoint(
    conn: Conn, postgres_url: str
) -> None:
    postgres_insert(Q, conn, EXPIRING)
    async with (
        transaction_connection(postgres_url) as first,
        transaction_connection(postgres_url) as second,
    ):
        # Waiting for a lock would be a bug here: fail fast instead of hanging.
        await second.execute("SET lock_timeout = '2s'")
        assert await expired(first, EXPIRY, 2) == EXPIRED[:2]
        assert await expired(second, EXPIRY, 10) == EXPIRED[2:]
        # Locks end with the transaction: after a rollback the rows can be read again.
        await first.rollback()
        # (A transaction's own locks never make it skip a row.)
        assert await expired(second, EXPIRY, 10) == EXPIRED
        await second.rollback()


async def test_concurrent_closing_reads_with_skip_locked_are_disjoint(
    conn: Conn, postgres_url: str
) -> None:
    postgres_insert(Q, conn, FINISHING)

    async def locked(
        connection: AsyncConn, row_limit: int, ids: list[str] | None = None
    ) -> list[str]:
        rows = await locking_unclosed(connection, row_limit, ids)
        return [row.execution_id for row in rows]

    async with (
        transaction_connection(postgres_url) as first,
        transaction_connection(postgres_url) as second,
    ):
        await second.execute("SET lock_timeout = '2s'")
        assert await locked(first, 2) == UNCLOSED[:2]
        assert await locked(second, 10) == UNCLOSED[2:]
        async with transaction_connection(postgres_url) as third:
            await third.execute("SET lock_timeout = '2s'")
            # The one-by-one fallback skips held rows too...
            assert await locked(third, 10, [UNCLOSED[0], UNCLOSED[2]]) == []
            # ...while the ids query neither locks nor skips.
            ids = await AQ.get_finished_unclosed_task_execution_ids(third, row_limit=10)
            assert ids == UNCLOSED
        await first.rollback()
        assert await locked(second, 10) == UNCLOSED
        await second.rollback()


async def test_concurrent_takes_of_cancellation_requests_are_disjoint(
    conn: Conn, postgres_url: str
) -> None:
    postgres_insert(Q, conn, REQUESTS)

    async def take(connection: AsyncConn, row_limit: int) -> list[str]:
        taken = await AQ.take_cancellation_requests(
            connection, now=at(9), execution_ids=REQUESTS_ASKED, row_limit=row_limit
        )
        return sorted(taken)

    async with (
        transaction_connection(postgres_url) as first,
        transaction_connection(postgres_url) as second,
    ):
        await second.execute("SET lock_timeout = '2s'")
        assert await take(first, 1) == ["te_1"]
        assert await take(second, 10) == ["te_3", "te_5"]  # te_1 is held: skipped, not awaited
        await first.rollback()  # te_1 asks again
        assert await take(second, 10) == ["te_1"]
        await second.commit()
    flags = {
        e.execution_id: e.needs_promise_cancellation
        for e in read(conn, "te_1", "te_3", "te_4", "te_5")
    }
    assert flags == {"te_1": False, "te_3": False, "te_4": True, "te_5": False}


async def wait_until_waiting_for_a_lock(conn: Conn, pid: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid]
        ).fetchone()
        if row is not None and row[0] == "Lock":
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"backend {pid} never waited for a lock")


@pytest.mark.parametrize("guarded", [True, False])
async def test_version_guard_is_rechecked_after_a_concurrent_update_commits(
    conn: Conn, postgres_url: str, guarded: bool
) -> None:
    """Two read-modify-write updates of the same row version race under READ COMMITTED.

    The second waits for the first's row lock; once the first commits, PostgreSQL re-evaluates
    the second's WHERE clause against the new row. With the version in the WHERE clause the
    second update matches nothing; without it (the reference's bug), it overwrites the first.
    """
    postgres_insert(Q, conn, [Execution("te_1", version=0, children_tasks_completed_count=0)])

    async def increment(connection: AsyncConn) -> int:
        return await update_by_ids(
            connection,
            ["te_1"],
            Change(updated_at=at(1), children_tasks_completed_count=1, version=1),
            version=0 if guarded else None,
        )

    async with (
        transaction_connection(postgres_url) as first,
        transaction_connection(postgres_url) as second,
    ):
        assert await increment(first) == 1
        racing = asyncio.create_task(increment(second))
        await wait_until_waiting_for_a_lock(conn, second.info.backend_pid)
        await first.commit()
        assert await racing == (0 if guarded else 1)
        await second.commit()
    assert read(conn, "te_1")[0].version == 1


async def test_a_cancel_racing_a_committed_write_matches_nothing(
    conn: Conn, postgres_url: str
) -> None:
    postgres_insert(Q, conn, [Execution("te_1", status="running", version=4)])
    async with (
        transaction_connection(postgres_url) as first,
        transaction_connection(postgres_url) as second,
    ):
        finished = Change(updated_at=at(1), status="completed", version=5)
        assert await update_by_ids(first, ["te_1"], finished, version=4) == 1
        racing = asyncio.create_task(cancel_one(second, "te_1", "running", 4))
        await wait_until_waiting_for_a_lock(conn, second.info.backend_pid)
        await first.commit()
        assert await racing == 0
        await second.commit()
    (after,) = read(conn, "te_1")
    assert (after.status, after.version) == ("completed", 5)


# --- custom table name --------------------------------------------------------------------------


async def test_custom_table_has_its_own_indexes_and_leaves_the_default_alone(
    conn: Conn, aconn: AsyncConn
) -> None:
    table = "custom_executions"
    assert await postgres_migrate(aconn, table) == [
        m.version for m in pg.MIGRATIONS if m.version > 0
    ]
    assert tables_of(conn) == {
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
    custom = pg.Queries(table)
    postgres_insert(custom, conn, [Execution("te_custom")])
    acustom = pg.AsyncQueries(table)
    found = await acustom.get_task_executions_by_ids(aconn, execution_ids=["te_custom"])
    assert [row.execution_id for row in found] == ["te_custom"]
    assert await read_ids(aconn, ["te_custom"]) == []
    # The same execution id may exist once per table.
    postgres_insert(Q, conn, [Execution("te_custom")])


# Every name the schema derives from the table name ({t}); PostgreSQL keeps 63 bytes of each.
DERIVED_NAMES = [
    *INDEXES,
    "ix_{t}_ready_concurrency",
    "{t}_concurrency_check",
    "{t}_pkey",
    "{t}_status_check",
    "{t}_root_task_check",
    "{t}_parent_task_check",
    "{t}_id_seq",
    "{t}_migrations_pkey",
]
LONGEST_TABLE_NAME_THAT_FITS = 63 - max(len(name.format(t="")) for name in DERIVED_NAMES)


async def test_the_longest_table_name_keeps_every_derived_name_intact(
    conn: Conn, aconn: AsyncConn
) -> None:
    table = "t" * TABLE_NAME_MAX_LENGTH
    await postgres_migrate(aconn, table)
    # PostgreSQL silently truncates identifiers longer than 63 bytes (a NOTICE, not an error).
    assert indexes_of(conn, table) == expected_indexes(table)
    constraints = conn.execute(
        "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass", [table]
    ).fetchall()
    assert sorted(c[0] for c in constraints) == sorted(
        name.format(t=table)
        for name in DERIVED_NAMES
        if name.endswith(("_check", "_pkey")) and "migrations" not in name
    )
    sequences = conn.execute(
        "SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()"
    ).fetchall()
    assert {f"{table}_id_seq", "durable_task_executions_id_seq"} == {s[0] for s in sequences}


async def test_a_table_name_that_fits_keeps_every_derived_name_intact(
    conn: Conn, aconn: AsyncConn
) -> None:
    table = "t" * min(TABLE_NAME_MAX_LENGTH, LONGEST_TABLE_NAME_THAT_FITS)
    await postgres_migrate(aconn, table)
    assert indexes_of(conn, table) == expected_indexes(table)
    assert (table + "_migrations") in tables_of(conn)


@pytest.mark.parametrize("bad", ["", "1table", "t-x", 't"; DROP TABLE x; --', "a" * 41])
def test_invalid_table_names_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid table name"):
        pg.Queries(bad)
    with pytest.raises(ValueError, match="invalid table name"):
        pg.AsyncQueries(bad)
    with pytest.raises(ValueError, match="invalid table name"):
        pg.migrations_for_table(bad)


# --- one sweep ----------------------------------------------------------------------------------


async def test_every_async_query(conn: Conn, postgres_url: str) -> None:
    """Most AsyncQueries methods in one sequence on one connection, against shared data."""
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as a:
        await AQ.lock_migrations(a, lock_key=1)
        await AQ.notify_ready(a, channel="nobody_listens")
        versions = list(await AQ.get_applied_migration_versions(a))
        assert versions == [m.version for m in pg.MIGRATIONS if m.version > 0]
        await AQ.insert_applied_migration(a, version=999, name="extra", applied_at=at(0))
        assert list(await AQ.get_applied_migration_versions(a))[-1] == 999

        full = fully_populated("te_full")  # running, closed, version 7
        batch = [full, *FINISHING]
        stored = await AQ.insert_task_executions(a, **postgres_insert_args(batch))
        assert sorted(stored) == sorted(e.execution_id for e in batch)
        holders = await AQ.get_task_execution_ids_by_idempotency_keys(
            a, task_ids=[full.task_id], idempotency_keys=[full.idempotency_key]
        )
        assert [h.execution_id for h in holders] == ["te_full"]

        rows = await AQ.get_task_executions_by_ids(a, execution_ids=["te_2", "te_full", "te_x"])
        assert [from_postgres(r) for r in rows] == [full, FINISHING[1]]
        asked = ["te_full", "te_1", "te_2", "te_3"]
        assert await AQ.get_finished_task_execution_ids(a, execution_ids=asked) == ["te_1", "te_3"]
        assert await AQ.get_expired_task_executions(a, now=at(1000), row_limit=10) == []
        assert await unclosed(a, 10) == UNCLOSED
        assert await unclosed(a, 10, ["te_full", "te_9"]) == ["te_9"]

        assert await AQ.close_task_executions(a, now=at(60), execution_ids=["te_4"]) == 1
        assert await AQ.postpone_closing_task_executions(a, now=at(61), execution_ids=["te_6"]) == 1
        assert await unclosed(a, 2) == ["te_1", "te_5"]
        assert await cancel_one(a, "te_2", "running", 0) == 1
        cancelled = await AQ.cancel_active_task_executions(
            a, error=CANCEL_ERROR, running_here=[], now=at(70), execution_ids=["te_8", "te_2"]
        )
        assert cancelled == ["te_8"]
        taken = await AQ.take_cancellation_requests(
            a, now=at(71), execution_ids=["te_full", "te_2", "te_8"], row_limit=10
        )
        assert sorted(taken) == ["te_2", "te_8", "te_full"]
        assert await update_by_ids(a, ["te_full"], Change(updated_at=at(72)), version=7) == 1
        failed = await AQ.fail_unreadable_task_execution(
            a, error=UNREADABLE_ERROR, now=at(90), execution_id="te_full"
        )
        assert failed == 1
    statuses = {e.execution_id: e.status for e in read(conn, "te_full", "te_2", "te_8")}
    assert statuses == {"te_full": "failed", "te_2": "cancelled", "te_8": "cancelled"}


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


async def listed(
    conn: AsyncConn,
    *,
    statuses: list[str] | None = None,
    task_id: str | None = None,
    top_level_only: bool = False,
    row_limit: int = 100,
    row_offset: int = 0,
    before_execution_id: str | None = None,
) -> list[str]:
    rows = await AQ.list_task_executions(
        conn,
        before_execution_id=before_execution_id,
        created_from=None,
        created_before=None,
        statuses=statuses,
        task_id=task_id,
        top_level_only=top_level_only,
        row_limit=row_limit,
        row_offset=row_offset,
    )
    return [row.execution_id for row in rows]


async def test_list_task_executions_newest_first_filtered_and_paged(
    conn: Conn, aconn: AsyncConn
) -> None:
    postgres_insert(Q, conn, INSPECTED)
    assert await listed(aconn) == ["te_5", "te_4", "te_3", "te_2", "te_1"]
    assert await listed(aconn, statuses=["ready"]) == ["te_5", "te_3", "te_2"]
    assert await listed(aconn, statuses=[]) == []
    assert await listed(aconn, task_id="a") == ["te_5", "te_4", "te_3", "te_1"]
    assert await listed(aconn, top_level_only=True) == ["te_5", "te_4", "te_2", "te_1"]
    assert await listed(aconn, statuses=["ready"], task_id="a", top_level_only=True) == ["te_5"]
    assert await listed(aconn, row_limit=2) == ["te_5", "te_4"]
    assert await listed(aconn, row_limit=2, row_offset=3) == ["te_2", "te_1"]
    assert await listed(aconn, row_limit=0) == []
    assert await listed(aconn, row_limit=2, before_execution_id="te_4") == ["te_3", "te_2"]
    assert await listed(aconn, task_id="a", before_execution_id="te_4") == ["te_3", "te_1"]
    assert await listed(aconn, before_execution_id="te_unknown") == []
    rows = await AQ.list_task_executions(
        aconn,
        before_execution_id=None,
        statuses=None,
        task_id="b",
        top_level_only=False,
        created_from=None,
        created_before=None,
        row_limit=1,
        row_offset=0,
    )
    assert [from_postgres(row) for row in rows] == [INSPECTED[1]]


async def test_count_task_executions_by_status(conn: Conn, aconn: AsyncConn) -> None:
    assert await AQ.count_task_executions_by_status(aconn, task_id=None, top_level_only=False) == []
    postgres_insert(Q, conn, INSPECTED)
    counts = await AQ.count_task_executions_by_status(aconn, task_id=None, top_level_only=False)
    assert [(r.status, r.execution_count) for r in counts] == [
        ("completed", 1),
        ("failed", 1),
        ("ready", 3),
    ]
    counts = await AQ.count_task_executions_by_status(aconn, task_id="a", top_level_only=True)
    assert [(r.status, r.execution_count) for r in counts] == [
        ("completed", 1),
        ("failed", 1),
        ("ready", 1),
    ]


async def test_get_oldest_ready_task_execution(conn: Conn, aconn: AsyncConn) -> None:
    assert await AQ.get_oldest_ready_task_execution(aconn, task_id=None) is None
    postgres_insert(Q, conn, INSPECTED)
    oldest = await AQ.get_oldest_ready_task_execution(aconn, task_id=None)
    assert oldest is not None
    assert from_postgres(oldest) == INSPECTED[2]  # earliest start_at; the tie goes to te_3
    of_b = await AQ.get_oldest_ready_task_execution(aconn, task_id="b")
    assert of_b is not None
    assert of_b.execution_id == "te_2"
    assert await AQ.get_oldest_ready_task_execution(aconn, task_id="c") is None


async def test_inspection_queries_async(conn: Conn, postgres_url: str) -> None:
    postgres_insert(Q, conn, INSPECTED)
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as a:
        rows = await AQ.list_task_executions(
            a,
            before_execution_id=None,
            statuses=["ready"],
            task_id=None,
            top_level_only=False,
            created_from=None,
            created_before=None,
            row_limit=2,
            row_offset=1,
        )
        assert [row.execution_id for row in rows] == ["te_3", "te_2"]
        counts = await AQ.count_task_executions_by_status(a, task_id="b", top_level_only=False)
        assert [(r.status, r.execution_count) for r in counts] == [("ready", 1)]
        oldest = await AQ.get_oldest_ready_task_execution(a, task_id="a")
        assert oldest is not None
        assert oldest.execution_id == "te_3"


# --- claim.sql: the set-based claim and the batch of guarded updates ----------------------------


# No key locked: the claim takes only executions without a concurrency limit.
NO_KEYS: Final[dict[str, list[Any]]] = {
    "key_task_ids": [],
    "key_concurrency_keys": [],
    "key_concurrency_limits": [],
}
LOCK_KEY: Final = concurrency_lock_key("durable_task_executions")


async def claim(
    conn: AsyncConn,
    row_limit: int,
    lease_ms: int = 100,
    queues: list[str] | None = None,
    keys: list[LockedKey] | None = None,
) -> list[Execution]:
    rows = await AQ.claim_ready_task_executions(
        conn,
        now=at(0),
        lease_ms=lease_ms,
        row_limit=row_limit,
        any_queue=queues is None,
        queues=queues or [],
        key_task_ids=[k.task_id for k in keys or []],
        key_concurrency_keys=[k.concurrency_key for k in keys or []],
        key_concurrency_limits=[k.concurrency_limit for k in keys or []],
    )
    return [from_postgres(row) for row in sorted(rows, key=lambda r: (r.start_at, r.id))]


async def lock_keys(conn: AsyncConn, queues: list[str] | None = None) -> list[LockedKey]:
    return await AQ.lock_ready_concurrency_keys(
        conn,
        now=at(0),
        any_queue=queues is None,
        queues=queues or [],
        row_limit=10,
        lock_key=LOCK_KEY,
    )


async def test_claim_ready_task_executions_fifo_limit_and_lease(
    conn: Conn, aconn: AsyncConn
) -> None:
    postgres_insert(Q, conn, CLAIMED)
    by_id = {e.execution_id: e for e in CLAIMED}
    first = await claim(aconn, 3)
    assert [e.execution_id for e in first] == ["te_6", "te_2", "te_5"]
    # start_at == now is due; the future and the running row are not.
    second = await claim(aconn, 10)
    assert [e.execution_id for e in second] == ["te_4", "te_7"]
    assert await claim(aconn, 10) == []
    for claimed in [*first, *second]:
        before = by_id[claimed.execution_id]
        assert claimed == expected_after(before, claim_change(before, 100))
    assert read(conn, *by_id) == [
        expected_after(e, claim_change(e, 100)) if e.execution_id not in ("te_1", "te_3") else e
        for e in CLAIMED
    ]


async def test_claim_fallback_candidates_and_one_row_claim(conn: Conn, aconn: AsyncConn) -> None:
    postgres_insert(Q, conn, CLAIMED)
    by_id = {e.execution_id: e for e in CLAIMED}
    # The same rows in the same order as the set-based claim, and their timeouts.
    candidates = await AQ.get_ready_task_executions_to_claim(
        aconn, now=at(0), row_limit=10, any_queue=True, queues=[], **NO_KEYS
    )
    assert [c.execution_id for c in candidates] == ["te_6", "te_2", "te_5", "te_4", "te_7"]
    assert [c.timeout_ms for c in candidates] == [
        by_id[c.execution_id].timeout_ms for c in candidates
    ]
    two = await AQ.get_ready_task_executions_to_claim(
        aconn, now=at(0), row_limit=2, any_queue=True, queues=[], **NO_KEYS
    )
    assert len(two) == 2
    # One row, claimed exactly like the set-based claim does; then it is no longer ready.
    row = await AQ.claim_ready_task_execution_by_execution_id(
        aconn, now=at(0), lease_ms=100, execution_id="te_5"
    )
    assert row is not None
    before = by_id["te_5"]
    assert from_postgres(row) == expected_after(before, claim_change(before, 100))
    again = await AQ.claim_ready_task_execution_by_execution_id(
        aconn, now=at(0), lease_ms=100, execution_id="te_5"
    )
    assert again is None
    assert (
        await AQ.claim_ready_task_execution_by_execution_id(
            aconn, now=at(0), lease_ms=100, execution_id="te_1"
        )
        is None
    )  # not ready


async def test_claim_filters_queues_and_takes_limited_rows_only_of_locked_keys(
    conn: Conn, aconn: AsyncConn
) -> None:
    postgres_insert(Q, conn, LIMITED)
    # b is full and c not due: only a is locked, with the smallest limit its waiting rows carry.
    keys = await lock_keys(aconn)
    assert [(k.task_id, k.concurrency_key, k.concurrency_limit) for k in keys] == [("task", "a", 2)]
    assert await lock_keys(aconn, ["emails"]) == []
    candidates = await AQ.get_ready_task_executions_to_claim(
        aconn,
        now=at(0),
        row_limit=10,
        any_queue=True,
        queues=[],
        key_task_ids=["task"],
        key_concurrency_keys=["a"],
        key_concurrency_limits=[2],
    )
    assert [c.execution_id for c in candidates] == ["te_free", "te_a1", "te_a2", "te_mail"]
    assert [e.execution_id for e in await claim(aconn, 10, queues=["emails"])] == ["te_mail"]
    # Without its key locked, no limited row is claimed; with it, as many as the key has slots.
    assert [e.execution_id for e in await claim(aconn, 10, queues=["default"])] == ["te_free"]
    assert [e.execution_id for e in await claim(aconn, 1, keys=keys)] == ["te_a1"]
    assert [e.execution_id for e in await claim(aconn, 10, keys=keys)] == ["te_a2"]
    assert await claim(aconn, 10, keys=keys) == []


async def test_a_locked_key_is_skipped_by_other_transactions_until_commit(
    conn: Conn, postgres_url: str
) -> None:
    postgres_insert(Q, conn, LIMITED)

    async def lock(connection: AsyncConn) -> list[str]:
        rows = await AQ.lock_ready_concurrency_keys(
            connection,
            now=at(0),
            any_queue=True,
            queues=[],
            row_limit=10,
            lock_key=LOCK_KEY,
        )
        return [row.concurrency_key for row in rows]

    async with (
        transaction_connection(postgres_url) as first,
        transaction_connection(postgres_url) as second,
    ):
        await second.execute("SET lock_timeout = '2s'")  # a held key is skipped, never awaited
        assert await lock(first) == ["a"]
        assert await lock(second) == []
        await first.commit()
        assert await lock(second) == ["a"]
        await second.rollback()


async def test_claim_ready_task_executions_limit_zero(conn: Conn, aconn: AsyncConn) -> None:
    postgres_insert(Q, conn, CLAIMED)
    assert await claim(aconn, 0) == []
    assert read(conn, *[e.execution_id for e in CLAIMED]) == CLAIMED


async def test_concurrent_set_based_claims_are_disjoint(conn: Conn, postgres_url: str) -> None:
    postgres_insert(Q, conn, CLAIMED)

    async def claim_ids(connection: AsyncConn, row_limit: int) -> list[str]:
        rows = await AQ.claim_ready_task_executions(
            connection,
            now=at(0),
            lease_ms=0,
            row_limit=row_limit,
            any_queue=True,
            queues=[],
            **NO_KEYS,
        )
        return [r.execution_id for r in sorted(rows, key=lambda r: (r.start_at, r.id))]

    async with (
        transaction_connection(postgres_url) as first,
        transaction_connection(postgres_url) as second,
    ):
        await second.execute("SET lock_timeout = '2s'")  # SKIP LOCKED never waits
        assert await claim_ids(first, 2) == ["te_6", "te_2"]
        assert await claim_ids(second, 10) == ["te_5", "te_4", "te_7"]
        await first.rollback()
        await second.commit()
    # The rolled-back claim gave its rows back.
    statuses = {e.execution_id: e.status for e in read(conn, "te_6", "te_2", "te_5")}
    assert statuses == {"te_6": "ready", "te_2": "ready", "te_5": "running"}


async def test_renew_task_execution_leases(conn: Conn, aconn: AsyncConn) -> None:
    postgres_insert(Q, conn, RENEWED)
    rows = await AQ.renew_task_execution_leases(
        aconn,
        expires_at=at(500),
        execution_ids=list(RENEW_ASKED),
        versions=list(RENEW_ASKED.values()),
    )
    assert rows == ["te_1"]
    assert read(conn, "te_1", "te_2", "te_3", "te_4") == [
        replace(RENEWED[0], expires_at=at(500)),
        *RENEWED[1:],
    ]


async def test_renew_task_execution_leases_async(conn: Conn, postgres_url: str) -> None:
    postgres_insert(Q, conn, RENEWED)
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as a:
        rows = await AQ.renew_task_execution_leases(
            a, expires_at=at(500), execution_ids=["te_1", "te_4"], versions=[3, 0]
        )
    assert rows == ["te_1"]


EACH_PAIRS: list[EachPair] = [
    (0, "te_1", ["ready"], None, 0, Change(updated_at=at(1), status="running", version=1)),
    (1, "te_2", ["ready"], None, None, Change(updated_at=at(2), status="cancelled")),
    (2, "te_3", None, False, 2, EVERY_CHANGE),
    (2, "te_4", None, False, None, EVERY_CHANGE),
    (3, "te_missing", None, None, None, Change(updated_at=at(4))),
    (4, "te_5", ["running", "ready"], False, 0, Change(updated_at=at(5), unset_error=True)),
    (5, "te_full", None, None, None, Change(updated_at=at(6))),
]


async def test_update_task_executions_each(conn: Conn, aconn: AsyncConn) -> None:
    full = fully_populated("te_full")
    postgres_insert(Q, conn, [*BY_IDS, full])
    rows = await AQ.update_task_executions_each(aconn, **each_args(EACH_PAIRS))
    # One row per updated execution, tagged with the update that matched it.
    assert sorted(r for r in rows) == [0, 2, 4, 5]
    after = read(conn, "te_1", "te_2", "te_3", "te_4", "te_5", "te_full")
    assert after == [
        expected_after(BY_IDS[0], EACH_PAIRS[0][5]),
        BY_IDS[1],  # running: the status filter does not match
        expected_after(BY_IDS[2], EVERY_CHANGE),
        BY_IDS[3],  # its needs_promise_cancellation is True
        expected_after(BY_IDS[4], EACH_PAIRS[5][5]),
        # No value given: every JSON column keeps its value (a JSON null is "no value").
        expected_after(full, EACH_PAIRS[6][5]),
    ]


async def test_update_task_executions_each_async(conn: Conn, postgres_url: str) -> None:
    postgres_insert(Q, conn, BY_IDS)
    pairs = EACH_PAIRS[:2]
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as a:
        rows = await AQ.update_task_executions_each(a, **each_args(pairs))
    assert list(rows) == [0]
    assert read(conn, "te_1")[0].status == "running"


# --- prune.sql: retention -----------------------------------------------------------------------

NO_CURSOR = datetime(1, 1, 2, tzinfo=UTC)


async def prunable(
    conn: AsyncConn,
    *,
    after: tuple[datetime, int] = (NO_CURSOR, 0),
    statuses: list[str] = FINISHED,
    row_limit: int = 10,
) -> list[PgPrunableRoot]:
    return await AQ.get_prunable_roots(
        conn,
        finished_before=PRUNE_BEFORE,
        after_finished_at=after[0],
        after_id=after[1],
        statuses=statuses,
        row_limit=row_limit,
    )


async def test_get_prunable_roots_walks_whole_finished_old_trees(
    conn: Conn, aconn: AsyncConn
) -> None:
    postgres_insert(Q, conn, PRUNED)
    assert [r.execution_id for r in await prunable(aconn)] == PRUNED_TREES
    [first] = await prunable(aconn, row_limit=1)
    assert (first.execution_id, first.finished_at) == ("te_1", at(10))
    assert first.finished_at is not None
    after = [r.execution_id for r in await prunable(aconn, after=(first.finished_at, first.id))]
    assert after == ["te_3"]
    assert [r.execution_id for r in await prunable(aconn, statuses=["failed"])] == ["te_3"]
    assert await prunable(aconn, statuses=[]) == []


async def test_prunable_roots_that_another_pruner_holds_are_skipped(
    conn: Conn, postgres_url: str
) -> None:
    postgres_insert(Q, conn, PRUNED)
    async with (
        transaction_connection(postgres_url) as first,
        transaction_connection(postgres_url) as second,
    ):
        arguments: dict[str, Any] = {
            "finished_before": PRUNE_BEFORE,
            "after_finished_at": NO_CURSOR,
            "after_id": 0,
            "statuses": FINISHED,
        }
        held = await AQ.get_prunable_roots(first, **arguments, row_limit=1)
        rest = await AQ.get_prunable_roots(second, **arguments, row_limit=10)
        assert [r.execution_id for r in held] == ["te_1"]
        assert [r.execution_id for r in rest] == ["te_3"]


async def test_count_and_delete_execution_trees(conn: Conn, aconn: AsyncConn) -> None:
    postgres_insert(Q, conn, PRUNED)
    counted = await AQ.count_execution_trees(aconn, root_execution_ids=PRUNED_TREES)
    expected = [("completed", 2), ("failed", 1)]
    assert sorted((r.status, r.execution_count) for r in counted) == expected
    deleted = await AQ.delete_execution_trees(aconn, root_execution_ids=PRUNED_TREES)
    assert sorted((r.status, r.execution_count) for r in deleted) == expected
    left = read(conn, *[e.execution_id for e in PRUNED])
    assert [e.execution_id for e in left] == ["te_2", "te_2c", "te_4", "te_5"]
    assert await AQ.delete_execution_trees(aconn, root_execution_ids=[]) == []


async def test_prune_queries_async(conn: Conn, postgres_url: str) -> None:
    postgres_insert(Q, conn, PRUNED)
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as a:
        roots = await AQ.get_prunable_roots(
            a,
            finished_before=PRUNE_BEFORE,
            after_finished_at=NO_CURSOR,
            after_id=0,
            statuses=FINISHED,
            row_limit=10,
        )
        assert [r.execution_id for r in roots] == PRUNED_TREES
        counted = await AQ.count_execution_trees(a, root_execution_ids=["te_3"])
        assert [(r.status, r.execution_count) for r in counted] == [("failed", 1)]
        deleted = await AQ.delete_execution_trees(a, root_execution_ids=["te_3"])
        assert [(r.status, r.execution_count) for r in deleted] == [("failed", 1)]


# --- insert.sql and claim.sql: idempotency keys and priorities (migration 0007) -----------------


def holders(conn: Conn, *pairs: tuple[str, str]) -> dict[tuple[str, str], str]:
    rows = Q.get_task_execution_ids_by_idempotency_keys(
        conn, task_ids=[task for task, _ in pairs], idempotency_keys=[key for _, key in pairs]
    )
    return {(row.task_id, row.idempotency_key): row.execution_id for row in rows}


def test_insert_skips_a_row_whose_key_is_taken_and_returns_only_stored_ids(conn: Conn) -> None:
    assert postgres_insert(Q, conn, [Execution("te_1", idempotency_key="k")]) == ["te_1"]
    batch = [
        Execution("te_2", idempotency_key="k"),  # held by te_1
        Execution("te_3", idempotency_key="k", task_id="other"),  # keys are per task
        Execution("te_4", idempotency_key="j"),
        Execution("te_5", idempotency_key="j"),  # held by te_4, inserted just before it
        Execution("te_6"),  # keyless rows never conflict
        Execution("te_7"),
    ]
    assert postgres_insert(Q, conn, batch) == ["te_3", "te_4", "te_6", "te_7"]
    assert holders(conn, ("task", "k"), ("other", "k"), ("task", "j"), ("task", "none")) == {
        ("task", "k"): "te_1",
        ("other", "k"): "te_3",
        ("task", "j"): "te_4",
    }
    assert holders(conn) == {}


def test_a_taken_key_does_not_hide_a_duplicate_execution_id(conn: Conn) -> None:
    postgres_insert(Q, conn, [Execution("te_1", idempotency_key="k")])
    # Only the key index is an arbiter: a duplicate id with a free key still raises.
    with pytest.raises(errors.UniqueViolation):
        postgres_insert(Q, conn, [Execution("te_1", idempotency_key="free")])
    # A row whose key is taken is skipped before its id is checked.
    assert postgres_insert(Q, conn, [Execution("te_1", idempotency_key="k")]) == []


async def test_a_concurrent_insert_of_the_same_key_waits_and_then_skips(
    conn: Conn, postgres_url: str
) -> None:
    """Two transactions insert one key: the second waits for the first, skips its row once the
    first commits (and then sees the holder), or stores it if the first rolled back."""
    args_1 = postgres_insert_args([Execution("te_1", idempotency_key="k")])
    args_2 = postgres_insert_args([Execution("te_2", idempotency_key="k")])
    for first_commits in (True, False):
        conn.execute("DELETE FROM durable_task_executions")
        async with (
            transaction_connection(postgres_url) as first,
            transaction_connection(postgres_url) as second,
        ):
            assert await AQ.insert_task_executions(first, **args_1) == ["te_1"]
            waiting = asyncio.create_task(AQ.insert_task_executions(second, **args_2))
            await wait_until_waiting_for_a_lock(conn, second.info.backend_pid)
            await (first.commit() if first_commits else first.rollback())
            if first_commits:
                assert await waiting == []
                rows = await AQ.get_task_execution_ids_by_idempotency_keys(
                    second, task_ids=["task"], idempotency_keys=["k"]
                )
                assert [row.execution_id for row in rows] == ["te_1"]
            else:
                assert await waiting == ["te_2"]
            await second.commit()
        assert [e.execution_id for e in read(conn, "te_1", "te_2")] == [
            "te_1" if first_commits else "te_2"
        ]


PRIORITIZED = [
    Execution("te_1", priority=0, start_at=at(-3)),
    Execution("te_2", priority=5, start_at=at(-1)),
    Execution("te_3", priority=-2, start_at=at(-9)),
    Execution("te_4", priority=5, start_at=at(-2)),
    Execution("te_5", priority=0, start_at=at(-3)),  # same start_at as te_1: insertion order
    Execution("te_6", priority=9, start_at=at(1)),  # not due
]


async def test_claims_take_higher_priorities_first_then_fifo(conn: Conn, aconn: AsyncConn) -> None:
    postgres_insert(Q, conn, PRIORITIZED)
    order = ["te_4", "te_2", "te_1", "te_5", "te_3"]
    candidates = await AQ.get_ready_task_executions_to_claim(
        aconn, now=at(0), row_limit=10, any_queue=True, queues=[], **NO_KEYS
    )
    assert [c.execution_id for c in candidates] == order
    for expected in (order[:3], order[3:]):
        rows = await claim(aconn, 3)
        assert sorted(row.execution_id for row in rows) == sorted(expected)


def test_the_claim_reads_the_priority_index_and_stops_at_its_limit(conn: Conn) -> None:
    """EXPLAIN ANALYZE of the claim's candidate scan on a table of many finished and ready
    rows: an index scan of the priority index, in order, that reads only the rows the
    LIMIT needs (no sort, no scan of every ready row)."""
    conn.execute(
        "INSERT INTO durable_task_executions (task_id, execution_id, retry_options,"
        " sleep_ms_before_run, timeout_ms, run_input, children_tasks_completed_count, status,"
        " is_closed, needs_promise_cancellation, retry_attempts, start_at, version, created_at,"
        " updated_at, priority)"
        " SELECT 't', 'te_' || n, '{}', 0, 1000, '', 0,"
        " CASE WHEN n %% 5 = 0 THEN 'ready' ELSE 'completed' END, false, false, 0,"
        " %s::timestamptz - n * interval '1 ms', 0, now(), now(), n %% 7"
        " FROM generate_series(1, 20000) AS n",
        [T0],
    )
    conn.execute("ANALYZE durable_task_executions")
    sql = pg.queries.GET_READY_TASK_EXECUTIONS_TO_CLAIM_SQL.format(table="durable_task_executions")
    conn.execute(f"PREPARE candidates AS {sql}")
    conn.execute("SET plan_cache_mode = force_generic_plan")
    try:
        plan = "\n".join(
            row[0]
            for row in conn.execute(
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)"
                f" EXECUTE candidates('{T0.isoformat()}', true, '{{}}', 10, '{{}}', '{{}}', '{{}}')"
            ).fetchall()
        )
    finally:
        conn.execute("DEALLOCATE candidates")
        conn.execute("RESET plan_cache_mode")
    # Executions without a concurrency limit come from their partial index in claim order; the
    # final sort merges them with the locked keys' executions (none here): at most 10 rows.
    scan = next(line for line in plan.splitlines() if "Index Scan" in line)
    assert "ix_durable_task_executions_ready_unlimited" in scan, plan
    assert "rows=10 " in scan, plan


# --- schedules ------------------------------------------------------------------------------------


async def _register(
    conn: AsyncConn,
    schedule_id: str,
    *,
    cron: str | None,
    every_ms: int | None,
    timezone: str = "UTC",
    next_tick: int,
    now: int,
    run_input: str = "1",
) -> None:
    await AQ.register_task_schedule(
        conn,
        schedule_id=schedule_id,
        task_id="report",
        cron=cron,
        every_ms=every_ms,
        timezone=timezone,
        run_input=run_input,
        next_tick_at=at(next_tick),
        now=at(now),
    )


async def test_register_task_schedule_inserts_then_keeps_the_next_tick_unless_the_timing_changed(
    aconn: AsyncConn,
) -> None:
    await _register(aconn, "nightly", cron="0 3 * * *", every_ms=None, next_tick=100, now=1)
    [row] = await AQ.get_task_schedules(aconn, schedule_ids=["nightly", "unknown"])
    assert (row.cron, row.every_ms, row.next_tick_at, row.created_at) == (
        "0 3 * * *",
        None,
        at(100),
        at(1),
    )
    assert row.last_tick_at is None
    assert row.last_execution_id is None
    # Same timing, new input: the next tick stays (a missed one is still caught up).
    await _register(
        aconn, "nightly", cron="0 3 * * *", every_ms=None, next_tick=500, now=2, run_input="2"
    )
    [row] = await AQ.get_task_schedules(aconn, schedule_ids=["nightly"])
    assert (row.next_tick_at, row.run_input, row.created_at, row.updated_at) == (
        at(100),
        "2",
        at(1),
        at(2),
    )
    # New timing: the new next tick.
    await _register(aconn, "nightly", cron=None, every_ms=500, next_tick=600, now=3)
    [row] = await AQ.get_task_schedules(aconn, schedule_ids=["nightly"])
    assert (row.cron, row.every_ms, row.next_tick_at) == (None, 500, at(600))
    await _register(
        aconn, "nightly", cron=None, every_ms=500, timezone="Europe/Berlin", next_tick=700, now=4
    )
    [row] = await AQ.get_task_schedules(aconn, schedule_ids=["nightly"])
    assert (row.timezone, row.next_tick_at) == ("Europe/Berlin", at(700))


async def test_schedules_need_exactly_one_of_cron_and_every_ms(aconn: AsyncConn) -> None:
    with pytest.raises(errors.CheckViolation):
        await _register(aconn, "both", cron="* * * * *", every_ms=5, next_tick=1, now=1)
    with pytest.raises(errors.CheckViolation):
        await _register(aconn, "neither", cron=None, every_ms=None, next_tick=1, now=1)


async def test_advance_task_schedule_is_a_compare_and_set(aconn: AsyncConn) -> None:
    await _register(aconn, "poll", cron=None, every_ms=500, next_tick=100, now=1)
    advance: dict[str, Any] = {
        "next_tick_at": at(600),
        "last_tick_at": at(100),
        "last_execution_id": "te_1",
        "updated_at": at(101),
        "schedule_id": "poll",
        "expected_next_tick_at": at(100),
    }
    assert await AQ.advance_task_schedule(aconn, **advance) == 1
    assert await AQ.advance_task_schedule(aconn, **{**advance, "last_execution_id": "te_2"}) == 0
    assert await AQ.advance_task_schedule(aconn, **{**advance, "schedule_id": "other"}) == 0
    [row] = await AQ.get_task_schedules(aconn, schedule_ids=["poll"])
    assert (row.next_tick_at, row.last_tick_at, row.last_execution_id, row.updated_at) == (
        at(600),
        at(100),
        "te_1",
        at(101),
    )


async def test_concurrent_advances_of_one_tick_have_one_winner(
    aconn: AsyncConn, postgres_url: str
) -> None:
    await _register(aconn, "poll", cron=None, every_ms=500, next_tick=100, now=1)
    advance: dict[str, Any] = {
        "next_tick_at": at(600),
        "last_tick_at": at(100),
        "updated_at": at(101),
        "schedule_id": "poll",
        "expected_next_tick_at": at(100),
    }
    async with (
        await psycopg.AsyncConnection.connect(postgres_url) as first,
        await psycopg.AsyncConnection.connect(postgres_url) as second,
    ):
        assert await AQ.advance_task_schedule(first, **advance, last_execution_id="te_1") == 1
        # The second waits for the first's row lock, then re-checks its guard: no match.
        waiting = asyncio.ensure_future(
            AQ.advance_task_schedule(second, **advance, last_execution_id="te_2")
        )
        await asyncio.sleep(0.2)
        await first.commit()
        assert await waiting == 0
        await second.commit()
    [row] = await AQ.get_task_schedules(aconn, schedule_ids=["poll"])
    assert row.last_execution_id == "te_1"


async def test_list_task_schedules_with_the_last_execution_status(
    conn: Conn, aconn: AsyncConn
) -> None:
    postgres_insert(Q, conn, [Execution("te_1", status="completed")])
    await _register(aconn, "b", cron=None, every_ms=500, next_tick=100, now=1)
    await _register(aconn, "a", cron="0 3 * * *", every_ms=None, next_tick=100, now=1)
    await _register(aconn, "c", cron=None, every_ms=500, next_tick=100, now=1)
    for schedule_id, execution_id in (("b", "te_1"), ("c", "te_pruned")):
        await AQ.advance_task_schedule(
            aconn,
            next_tick_at=at(600),
            last_tick_at=at(100),
            last_execution_id=execution_id,
            updated_at=at(101),
            schedule_id=schedule_id,
            expected_next_tick_at=at(100),
        )
    rows = await AQ.list_task_schedules(aconn)
    assert [(r.schedule_id, r.last_execution_id, r.last_execution_status) for r in rows] == [
        ("a", None, None),
        ("b", "te_1", "completed"),
        ("c", "te_pruned", None),
    ]


async def test_schedule_queries_async(conn: Conn, postgres_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as a:
        await AQ.register_task_schedule(
            a,
            schedule_id="poll",
            task_id="report",
            cron=None,
            every_ms=500,
            timezone="UTC",
            run_input="1",
            next_tick_at=at(100),
            now=at(1),
        )
        [row] = await AQ.get_task_schedules(a, schedule_ids=["poll"])
        assert row.next_tick_at == at(100)
        changed = await AQ.advance_task_schedule(
            a,
            next_tick_at=at(600),
            last_tick_at=at(100),
            last_execution_id="te_1",
            updated_at=at(101),
            schedule_id="poll",
            expected_next_tick_at=at(100),
        )
        assert changed == 1
        [listed] = await AQ.list_task_schedules(a)
        assert (listed.schedule_id, listed.next_tick_at) == ("poll", at(600))
