"""Prepare every generated query against a freshly migrated scratch database of its dialect.

sqlc checks a query against the catalog it builds from the schema files, but not everywhere: a
misspelt column in a SQLite ``WHERE`` or a PostgreSQL ``SET`` list compiles, generates typed
code and passes mypy, and fails only when the query runs. The database itself is the authority,
so generation asks it: the plugin writes a manifest per dialect (the migrations and each query's
final text for the default table name, :func:`manifest`), and :func:`vet` applies the
migrations to a scratch database and prepares each query there — ``EXPLAIN`` on SQLite (which
compiles the statement without running it), a protocol-level prepare on PostgreSQL. Every
failure is reported with the query's name and file.

The plugin side (:func:`manifest`) uses the standard library only, like the rest of the plugin;
the PostgreSQL side of :func:`vet` imports psycopg (a dev dependency) when it runs.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from codegen.analyze import Package
    from codegen.schema_files import MigrationFile

# The manifest's name in each dialect's output; regenerate takes it out before writing.
MANIFEST = "vet.json"
# The server the PostgreSQL queries are prepared on: a scratch database is created there and
# dropped afterwards. The tests' variable is honoured so that CI needs no second setting.
POSTGRES_URL_VARIABLES = ("DURABLE_CODEGEN_POSTGRES_URL", "DURABLE_TEST_POSTGRES_URL")
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


class VetError(Exception):
    """A query (or a migration) the database refused; the message names each one."""


@dataclass(frozen=True, slots=True)
class VetQuery:
    name: str
    file: str
    sql: str


@dataclass(frozen=True, slots=True)
class Manifest:
    dialect: str
    migrations: tuple[tuple[str, ...], ...]  # statements per migration file, in version order
    queries: tuple[VetQuery, ...]


def manifest(package: Package, migrations: Sequence[MigrationFile]) -> str:
    """The manifest for one dialect: every text filled in for the package's default table."""

    def fill(template: str) -> str:
        return template.format(table=package.table)

    queries = []
    for plan in package.queries:
        if plan.sqlite_text is not None:
            # A slice hole becomes one NULL: the statement still compiles as written.
            text = "NULL".join(plan.sqlite_text.parts)
        else:
            text = plan.postgresql_text
        queries.append({"name": plan.name, "file": plan.filename, "sql": fill(text)})
    document = {
        "dialect": package.dialect,
        "migrations": [[fill(s) for s in m.statements] for m in migrations],
        "queries": queries,
    }
    return json.dumps(document, indent=1) + "\n"


def load_manifest(data: bytes) -> Manifest:
    document = json.loads(data)
    return Manifest(
        dialect=document["dialect"],
        migrations=tuple(tuple(m) for m in document["migrations"]),
        queries=tuple(VetQuery(q["name"], q["file"], q["sql"]) for q in document["queries"]),
    )


def vet(manifests: Iterable[Manifest], environ: Mapping[str, str] = os.environ) -> None:
    """Raise :class:`VetError` naming every query that its dialect's database refuses."""
    problems: list[str] = []
    for item in manifests:
        if item.dialect == "sqlite":
            problems += _vet_sqlite(item)
        elif item.dialect == "postgresql":
            problems += _vet_postgresql(item, _postgres_url(environ))
        else:
            raise VetError(f"no way to vet queries of dialect {item.dialect!r}")
    if problems:
        raise VetError(
            "the database refused these queries (a misspelt column or table?):\n"
            + "\n".join(f"  {p}" for p in problems)
        )


def _describe(query: VetQuery, dialect: str, error: str) -> str:
    # PostgreSQL's message spans lines (LINE n: the text, a caret, a HINT): keep them indented.
    detail = error.strip().replace("\n", "\n      ")
    return f"{query.name} ({dialect}, {query.file}): {detail}"


class _EveryParameterNull(dict[str, None]):
    """Binds NULL to each named placeholder: EXPLAIN needs values, not meaningful ones."""

    def __missing__(self, key: str) -> None:
        return None


def _vet_sqlite(item: Manifest) -> list[str]:
    connection = sqlite3.connect(":memory:")
    try:
        for number, statements in enumerate(item.migrations):
            for statement in statements:
                try:
                    connection.execute(statement)
                except sqlite3.Error as error:
                    raise VetError(f"sqlite migration {number} failed: {error}") from error
        problems = []
        for query in item.queries:
            try:
                connection.execute("EXPLAIN " + query.sql, _EveryParameterNull())
            except sqlite3.Error as error:
                problems.append(_describe(query, "sqlite", str(error)))
        return problems
    finally:
        connection.close()


def _postgres_url(environ: Mapping[str, str]) -> str:
    for variable in POSTGRES_URL_VARIABLES:
        if environ.get(variable):
            return environ[variable]
    return DEFAULT_POSTGRES_URL


def _vet_postgresql(item: Manifest, server_url: str) -> list[str]:
    import psycopg
    from psycopg import pq, sql
    from psycopg.conninfo import make_conninfo

    database = f"codegen_vet_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(server_url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as error:
        variables = " or ".join(POSTGRES_URL_VARIABLES)
        raise VetError(
            "generation prepares every PostgreSQL query on a scratch database, but no server "
            f"answered ({error}); start PostgreSQL or point {variables} at one"
        ) from error
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        try:
            with psycopg.connect(make_conninfo(server_url, dbname=database)) as connection:
                for number, statements in enumerate(item.migrations):
                    for statement in statements:
                        try:
                            connection.execute(statement.encode())
                        except psycopg.Error as error:
                            raise VetError(
                                f"postgresql migration {number} failed: {error}"
                            ) from error
                connection.commit()
                problems = []
                for query in item.queries:
                    # Prepared, never executed: unnamed statement, parameter types inferred.
                    result = connection.pgconn.prepare(b"", query.sql.encode())
                    if result.status == pq.ExecStatus.FATAL_ERROR:
                        message = (result.error_message or b"").decode(errors="replace")
                        problems.append(_describe(query, "postgresql", message))
                return problems
        finally:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
