"""Raw access to a test database, behind the storage's back: corrupting rows, dumping tables.

The reliability tests write poison rows with plain SQL (as a bad migration, a manual fix or a
foreign writer would) and compare full dumps of the table before and after a refused call. The
URL is the one the storage was opened with: ``sqlite:///path`` or a PostgreSQL URL.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TypeAlias

import psycopg
from psycopg import sql

from durable_execution.storage.url import PostgresUrl, SqliteUrl, parse_storage_url

TABLE = "durable_task_executions"
Dump: TypeAlias = list[tuple[object, ...]]


def execute(url: str, statement: str, params: tuple[object, ...] = ()) -> int:
    """Run one statement (``?`` placeholders on SQLite, ``%s`` on PostgreSQL); rows changed.

    SQLite runs with CHECK constraints off, so that even invalid JSON text can be written.
    """
    target = parse_storage_url(url)
    if isinstance(target, SqliteUrl):
        conn = sqlite3.connect(target.path, isolation_level=None)
        try:
            conn.execute("PRAGMA ignore_check_constraints = ON")
            return conn.execute(statement, params).rowcount
        finally:
            conn.close()
    assert isinstance(target, PostgresUrl)
    with psycopg.connect(target.conninfo, autocommit=True) as pg:
        return pg.execute(statement.encode(), params).rowcount


def dump(url: str, table: str = TABLE) -> Dump:
    """Every row of ``table`` (every column, as text), ordered; [] if the table does not exist."""
    target = parse_storage_url(url)
    if isinstance(target, SqliteUrl):
        conn = sqlite3.connect(target.path)
        try:
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).fetchone()
            if exists is None:
                return []
            rows = conn.execute(f'SELECT * FROM "{table}" ORDER BY 1, 2, 3').fetchall()
        finally:
            conn.close()
        return [tuple(row) for row in rows]
    assert isinstance(target, PostgresUrl)
    with psycopg.connect(target.conninfo, autocommit=True) as pg:
        found = pg.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        if found is None or found[0] is None:
            return []
        query = sql.SQL("SELECT t::text FROM {} t ORDER BY t::text").format(sql.Identifier(table))
        return [tuple(row) for row in pg.execute(query).fetchall()]


def tables(url: str) -> list[str]:
    """The names of the tables the database (PostgreSQL: the URL's schema) holds."""
    target = parse_storage_url(url)
    if isinstance(target, SqliteUrl):
        conn = sqlite3.connect(target.path)
        try:
            rows = conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            ).fetchall()
        finally:
            conn.close()
        return [str(row[0]) for row in rows]
    assert isinstance(target, PostgresUrl)
    with psycopg.connect(target.conninfo, autocommit=True) as pg:
        rows = pg.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema() ORDER BY 1"
        ).fetchall()
        return [str(row[0]) for row in rows]


def status_and_error(db_url: str, execution_id: str) -> tuple[str, str | None]:
    target = parse_storage_url(db_url)
    if isinstance(target, SqliteUrl):
        conn = sqlite3.connect(target.path)
        try:
            found = conn.execute(
                f"SELECT status, error FROM {TABLE} WHERE execution_id = ?", (execution_id,)
            ).fetchone()
        finally:
            conn.close()
        status, error = found
        message = None
        if error is not None:
            try:
                message = json.loads(error).get("message")
            except ValueError:
                message = f"<invalid JSON {error!r}>"
        return str(status), message
    assert isinstance(target, PostgresUrl)
    with psycopg.connect(target.conninfo, autocommit=True) as pg:
        pg_found = pg.execute(
            f"SELECT status, error->>'message' FROM {TABLE} WHERE execution_id = %s",
            (execution_id,),
        ).fetchone()
    assert pg_found is not None
    return str(pg_found[0]), pg_found[1]
