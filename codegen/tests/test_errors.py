"""What the plugin refuses: sqlc fails with our message, which names the query at fault."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from codegen.errors import CodegenError
from codegen.regenerate import REPO_ROOT, RegenerateError, generate
from codegen.request import decode_request
from codegen.tests.conftest import write_project

PG_SCHEMA = """
CREATE TABLE durable_task_executions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    status text NOT NULL,
    input jsonb NOT NULL
);
"""

SQLITE_SCHEMA = """
CREATE TABLE durable_task_executions (
    id INTEGER PRIMARY KEY,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
"""


def generate_error(tmp_path: Path, engine: str, queries: str, **options: str) -> str:
    schema = PG_SCHEMA if engine == "postgresql" else SQLITE_SCHEMA
    write_project(tmp_path, engine, schema=schema, queries=queries, **options)
    with pytest.raises(RegenerateError) as caught:
        generate(tmp_path, "out")
    return str(caught.value)


@pytest.mark.parametrize(
    ("engine", "query", "expected"),
    [
        (
            "postgresql",
            "-- name: JsonKey :many\nSELECT input->>'k' FROM durable_task_executions;",
            "query JsonKey: column #1: sqlc could not infer its type (`any`)",
        ),
        (
            "sqlite",
            "-- name: Fallback :many\nSELECT id FROM durable_task_executions"
            " WHERE status = IFNULL(@status, status);",
            "query Fallback: parameter 'status': sqlc could not infer its type (`any`)",
        ),
        (
            "sqlite",
            "-- name: Newest :one\nSELECT max(created_at) AS newest FROM durable_task_executions;",
            "query Newest: column 'newest': sqlc could not infer its type (`any`)",
        ),
        (
            "postgresql",
            "-- name: GetBatch :batchone\nSELECT id FROM durable_task_executions WHERE id = @id;",
            "query GetBatch: :batchone is not supported",
        ),
        (
            "postgresql",
            "-- name: CopyIn :copyfrom\nINSERT INTO durable_task_executions (status, input)"
            " VALUES (@status, @input);",
            "query CopyIn: :copyfrom is not supported",
        ),
        (
            "postgresql",
            "-- name: BySlice :many\nSELECT id FROM durable_task_executions"
            " WHERE status IN (sqlc.slice('statuses'));",
            "query BySlice: parameter 'statuses': sqlc.slice() is not supported on PostgreSQL",
        ),
        (
            "postgresql",
            "-- name: Embedded :many\nSELECT sqlc.embed(durable_task_executions)"
            " FROM durable_task_executions;",
            "query Embedded: column 'durable_task_executions': sqlc.embed() is not supported",
        ),
        (
            "sqlite",
            "-- name: Mixed :many\nSELECT id FROM durable_task_executions"
            " WHERE status = @status AND created_at > ?;",
            "query Mixed: mixes @named parameters with bare `?`, which sqlc numbers wrongly",
        ),
    ],
)
def test_refusals_name_the_query(tmp_path: Path, engine: str, query: str, expected: str) -> None:
    message = generate_error(tmp_path, engine, query)
    assert "error generating code" in message  # it came back through sqlc
    assert expected in message


def test_unknown_column_type_names_the_table(tmp_path: Path) -> None:
    # Every table gets a model, so even an unused column must have a Python type.
    write_project(
        tmp_path,
        "postgresql",
        schema="CREATE TABLE hosts (id bigint PRIMARY KEY, address inet);",
        queries="-- name: Ids :many\nSELECT id FROM hosts;",
    )
    with pytest.raises(RegenerateError) as caught:
        generate(tmp_path, "out")
    assert "table hosts: column 'address': PostgreSQL type 'inet' has no Python mapping" in str(
        caught.value
    )


def test_bad_table_option(tmp_path: Path) -> None:
    query = "-- name: Ids :many\nSELECT id FROM durable_task_executions;"
    message = generate_error(tmp_path, "sqlite", query, table="bad-name")
    assert "plugin option table 'bad-name': a table name must match" in message
    message = generate_error(tmp_path / "keyword", "sqlite", query, table="Select")
    assert "plugin option table 'Select': it is a reserved word of SQLite or PostgreSQL" in message


def test_target_must_fit_the_engine(tmp_path: Path) -> None:
    query = "-- name: Ids :many\nSELECT id FROM durable_task_executions;"
    message = generate_error(tmp_path, "sqlite", query, target="psycopg")
    assert "target 'psycopg' needs engine 'postgresql', not 'sqlite'" in message


def test_schema_files_must_be_numbered(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        "sqlite",
        schema=SQLITE_SCHEMA,
        queries="-- name: Ids :many\nSELECT id FROM durable_task_executions;",
    )
    (tmp_path / "schema/sqlite/0001_schema.sql").rename(tmp_path / "schema/sqlite/schema.sql")
    with pytest.raises(RegenerateError, match=r"its name must look like 0001_name\.sql"):
        generate(tmp_path, "out")


def test_malformed_requests_are_refused_clearly() -> None:
    with pytest.raises(CodegenError, match="is `format: json` set"):
        decode_request(b"\x0a\x02v2")  # protobuf, as sqlc sends without format: json
    options = base64.b64encode(json.dumps({"target": "psycopg", "tabel": "x"}).encode()).decode()
    request = {"settings": {"engine": "postgresql"}, "catalog": {}, "plugin_options": options}
    with pytest.raises(CodegenError, match="unknown plugin option"):
        decode_request(json.dumps(request).encode())


def test_plugin_process_exits_1_with_the_message_on_stderr() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "codegen.plugin"],
        input=b"not json",
        capture_output=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == b""
    assert b"codegen: the request is not JSON" in result.stderr


def test_shim_explains_a_missing_interpreter_variable() -> None:
    # sqlc gives the plugin an empty environment; without the variable the shim cannot start.
    result = subprocess.run(
        [str(REPO_ROOT / "codegen" / "sqlc-plugin")],
        input=b"{}",
        capture_output=True,
        env={key: value for key, value in os.environ.items() if key != "DURABLE_CODEGEN_PYTHON"},
        check=False,
    )
    assert result.returncode == 2
    assert b"DURABLE_CODEGEN_PYTHON is not set" in result.stderr
