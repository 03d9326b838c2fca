"""Database fixtures shared by every test: real PostgreSQL databases and real SQLite files.

PostgreSQL: one fresh database per test session (``postgres_database_url``), and inside it one
fresh schema per test (``postgres_url``), so every test starts from an empty namespace without
paying for a ``CREATE DATABASE`` each time. The fixtures are synchronous (psycopg sync
connections for setup) so that sync and async tests can use them alike.

An unreachable server fails the tests that need it, loudly: a skip would hide a gap.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import TupleRow

_DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

# Dropping a schema or database waits for locks that a leaked connection may hold; give up
# (and fail the teardown) rather than hang the whole run.
_TEARDOWN_LOCK_TIMEOUT = "10s"


def _with_database(url: str, database: str) -> str:
    """``url`` pointing at another database, every other part (host, user, query) kept."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def _with_search_path(url: str, schema: str) -> str:
    """``url`` whose connections resolve unqualified names in ``schema`` (libpq ``options``)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    existing = [value for key, value in query if key == "options"]
    options = " ".join([*existing, f"-csearch_path={schema}"])
    query = [(key, value) for key, value in query if key != "options"]
    query.append(("options", options))
    # libpq decodes %XX but not '+', so spaces must be encoded as %20.
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def _connect(url: str) -> psycopg.Connection[TupleRow]:
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as error:
        pytest.fail(
            f"PostgreSQL is not reachable at {url}: {error}\n"
            "Start it (see .ci/run) or point DURABLE_TEST_POSTGRES_URL at a server.",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """A URL with the right to create databases (the CI run sets its own)."""
    return os.environ.get("DURABLE_TEST_POSTGRES_URL", _DEFAULT_ADMIN_URL)


@pytest.fixture(scope="session")
def postgres_database_url(postgres_admin_url: str) -> Iterator[str]:
    """A database created for this test session and dropped (even if in use) at its end."""
    database = f"de_test_{secrets.token_hex(6)}"
    with _connect(postgres_admin_url) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    try:
        yield _with_database(postgres_admin_url, database)
    finally:
        with _connect(postgres_admin_url) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )


@pytest.fixture
def postgres_url(postgres_database_url: str) -> Iterator[str]:
    """A URL whose connections see only a schema created for this test (dropped after it)."""
    schema = f"t_{secrets.token_hex(6)}"
    with _connect(postgres_database_url) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield _with_search_path(postgres_database_url, schema)
    finally:
        with _connect(postgres_database_url) as conn:
            conn.execute(
                sql.SQL("SET lock_timeout = {}").format(sql.Literal(_TEARDOWN_LOCK_TIMEOUT))
            )
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    """A path for a SQLite database file that does not exist yet."""
    return tmp_path / "durable.db"
