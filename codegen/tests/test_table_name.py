"""The table name limit: 63 bytes minus the rest of the longest name derived from the table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import psycopg
import pytest

from codegen.errors import CodegenError
from codegen.regenerate import RegenerateError, generate
from codegen.sqltext import table_identifiers
from codegen.table_name import table_name_limit
from codegen.tests.conftest import write_project
from codegen.tokenizer import POSTGRESQL, SQLITE, tokenize

TABLE = "durable_task_executions"


def identifiers(text: str, dialect: str = POSTGRESQL) -> frozenset[str]:
    return table_identifiers(tokenize(text, dialect), TABLE)


def test_derived_identifiers_are_found_outside_literals_and_comments() -> None:
    text = (
        "CREATE INDEX IX_Durable_Task_Executions_Status ON durable_task_executions (status);\n"
        "-- ix_durable_task_executions_in_a_comment_is_not_a_name\n"
        "SELECT 'durable_task_executions_in_a_literal', \"durable_task_executions_{x}\" "
        "FROM durable_task_executions_migrations, durable_task_executionsx"
    )
    assert identifiers(text) == {
        "IX_{table}_Status",  # unquoted: matched ignoring case, the rest kept as written
        "{table}",
        "{table}_{{x}}",  # a quoted name counts without its quotes; braces stay escaped
        "{table}_migrations",
    }
    assert identifiers("SELECT `durable_task_executions_y` FROM t", SQLITE) == {"{table}_y"}


def test_the_longest_derived_name_sets_the_limit() -> None:
    limit = table_name_limit(
        {"{table}", "{table}_migrations", "ix_{table}_status_is_closed_expires_at"}, TABLE
    )
    assert limit.max_length == 63 - len("ix__status_is_closed_expires_at") == 32
    assert limit.longest_name == "ix_<table>_status_is_closed_expires_at"
    assert "at most 32 characters" in limit.rule
    assert "ix_<table>_status_is_closed_expires_at" in limit.rule


def test_every_copy_of_the_table_name_takes_room() -> None:
    # 63 bytes for two copies and "_to_": each copy may take (63 - 4) // 2 = 29.
    limit = table_name_limit({"{table}_to_{table}", "{table}_migrations"}, "t")
    assert (limit.max_length, limit.longest_name) == (29, "<table>_to_<table>")


def test_the_limit_counts_bytes() -> None:
    limit = table_name_limit({"{table}_é"}, "t")  # é is 2 bytes in UTF-8
    assert limit.max_length == 63 - 3


def test_without_derived_names_the_limit_is_the_identifier_limit() -> None:
    assert table_name_limit(set(), TABLE).max_length == 63
    assert table_name_limit({"{table}"}, TABLE).max_length == 63


def test_a_default_table_that_does_not_fit_is_refused_stating_the_limit() -> None:
    with pytest.raises(CodegenError) as caught:
        table_name_limit({"ix_{table}_status_is_closed_expires_at"}, "t" * 33)
    assert str(caught.value) == (
        f"plugin option table {'t' * 33!r}: a table name must match ^[A-Za-z_][A-Za-z0-9_]*$ "
        "and be at most 32 characters (the longest name derived from it, "
        "ix_<table>_status_is_closed_expires_at, must fit PostgreSQL's 63-byte identifier limit)"
    )
    assert table_name_limit({"ix_{table}_status_is_closed_expires_at"}, "t" * 32).max_length == 32


def test_a_name_that_leaves_no_room_is_refused() -> None:
    with pytest.raises(CodegenError, match="leaves no room for a table name"):
        table_name_limit({"ix_{table}_" + "x" * 60}, "t")


# A schema whose longest derived name is an index, as in the project's own schema.
PG_SCHEMA = """
CREATE TABLE durable_task_executions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    status text NOT NULL,
    is_closed boolean NOT NULL,
    expires_at timestamptz,
    CONSTRAINT durable_task_executions_status_check CHECK (status <> '')
);
CREATE INDEX ix_durable_task_executions_status_is_closed_expires_at
    ON durable_task_executions (status, is_closed, expires_at);
"""
SQLITE_SCHEMA = """
CREATE TABLE durable_task_executions (
    id INTEGER PRIMARY KEY,
    status TEXT NOT NULL,
    is_closed BOOLEAN NOT NULL,
    expires_at INTEGER
);
CREATE INDEX ix_durable_task_executions_status_is_closed_expires_at
    ON durable_task_executions (status, is_closed, expires_at);
"""
QUERIES = "-- name: Ids :many\nSELECT id FROM durable_task_executions;"
LONGEST = "ix_<table>_status_is_closed_expires_at"


def _generated_package(tmp_path: Path, engine: str) -> ModuleType:
    schema = PG_SCHEMA if engine == "postgresql" else SQLITE_SCHEMA
    project = write_project(tmp_path / "project", engine, schema=schema, queries=QUERIES)
    out = tmp_path / "out"
    for name, contents in generate(project, "out").items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(contents)
    module_name = f"table_limit_{engine}_{tmp_path.name}"
    spec = importlib.util.spec_from_file_location(module_name, out / engine / "__init__.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("engine", ["postgresql", "sqlite"])
def test_generated_validation_uses_the_computed_limit(tmp_path: Path, engine: str) -> None:
    package = _generated_package(tmp_path, engine)
    assert package.validate_table_name("t" * 32) == "t" * 32
    with pytest.raises(ValueError, match="at most 32 characters") as caught:
        package.validate_table_name("t" * 33)
    assert LONGEST in str(caught.value)
    with pytest.raises(ValueError, match="at most 32 characters"):
        package.migrations_for_table("t" * 33)


def test_the_longest_accepted_name_keeps_its_index_name_intact(
    tmp_path: Path, postgres_url: str
) -> None:
    package = _generated_package(tmp_path, "postgresql")
    table = "t" * 32
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for migration in package.migrations_for_table(table):
            for statement in migration.statements:
                conn.execute(statement)
        names = {
            name
            for (name,) in conn.execute(
                "SELECT relname FROM pg_class WHERE relname LIKE %s", [f"%{table}%"]
            )
        }
        constraints = {
            name
            for (name,) in conn.execute(
                "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass", [table]
            )
        }
    index = f"ix_{table}_status_is_closed_expires_at"
    assert len(index) == 63  # exactly at PostgreSQL's limit, and not truncated
    assert index in names
    assert f"{table}_status_check" in constraints


def test_sqlc_run_refuses_a_default_table_the_schema_leaves_no_room_for(tmp_path: Path) -> None:
    long_table = "durable_task_executions_" + "x" * 9  # 33 characters
    write_project(
        tmp_path,
        "postgresql",
        schema=PG_SCHEMA.replace(TABLE, long_table),
        queries=QUERIES.replace(TABLE, long_table),
        table=long_table,
    )
    with pytest.raises(RegenerateError) as caught:
        generate(tmp_path, "out")
    message = str(caught.value)
    assert "error generating code" in message  # it came back through sqlc
    assert f"plugin option table {long_table!r}" in message
    assert f"at most 32 characters (the longest name derived from it, {LONGEST}" in message
