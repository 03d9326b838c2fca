"""Generation prepares every query on a scratch database: a misspelt column fails it by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from codegen.regenerate import RegenerateError, generate
from codegen.tests.conftest import write_project
from codegen.vet import Manifest, VetError, VetQuery, vet

SCHEMA = {
    "sqlite": (
        "CREATE TABLE durable_task_executions (\n"
        "    id INTEGER PRIMARY KEY,\n"
        "    status TEXT NOT NULL,\n"
        "    attempts INTEGER NOT NULL\n"
        ");\n"
    ),
    "postgresql": (
        "CREATE TABLE durable_task_executions (\n"
        "    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
        "    status text NOT NULL,\n"
        "    attempts integer NOT NULL\n"
        ");\n"
    ),
}

# One query per clause, each with one misspelt column (`statuss`). sqlc's own analysis lets
# these through (it does catch some others, e.g. PostgreSQL's ORDER BY and ON CONFLICT's
# EXCLUDED): only the database catches them.
MISSPELT = {
    "sqlite": {
        "where": "SELECT id FROM durable_task_executions WHERE statuss = CAST(@s AS TEXT);",
        "set": (
            "UPDATE durable_task_executions SET statuss = CAST(@s AS TEXT)"
            " WHERE id = CAST(@id AS INTEGER);"
        ),
        "order_by": "SELECT id FROM durable_task_executions ORDER BY statuss;",
        "subquery": (
            "UPDATE durable_task_executions SET attempts = attempts + 1 WHERE id IN ("
            "SELECT id FROM durable_task_executions WHERE statuss = 'ready' LIMIT 1);"
        ),
        "delete": "DELETE FROM durable_task_executions WHERE statuss = CAST(@s AS TEXT);",
    },
    "postgresql": {
        "where": (
            "SELECT id FROM durable_task_executions WHERE (@s::text IS NULL OR statuss = @s::text);"
        ),
        "set": (
            "UPDATE durable_task_executions SET attempts = attempts + 1,"
            " status = COALESCE(sqlc.narg('s')::text, statuss) WHERE id = @id::bigint;"
        ),
        "case": (
            "UPDATE durable_task_executions"
            " SET attempts = CASE WHEN statuss = 'x' THEN 1 ELSE 2 END WHERE id = @id::bigint;"
        ),
        "delete": "DELETE FROM durable_task_executions WHERE statuss = @s::text;",
        "subquery": (
            "UPDATE durable_task_executions SET attempts = attempts + 1 WHERE id IN ("
            "SELECT id FROM durable_task_executions WHERE statuss = 'ready' LIMIT 1);"
        ),
    },
}

CASES = [(engine, clause) for engine, queries in MISSPELT.items() for clause in queries]


def _project(root: Path, engine: str, query: str) -> Path:
    return write_project(
        root, engine, schema=SCHEMA[engine], queries=f"-- name: Misspelt :exec\n{query}\n"
    )


@pytest.mark.parametrize(("engine", "clause"), CASES)
def test_a_misspelt_column_fails_generation_naming_the_query(
    tmp_path: Path, engine: str, clause: str
) -> None:
    project = _project(tmp_path, engine, MISSPELT[engine][clause])
    with pytest.raises(RegenerateError) as caught:
        generate(project, "out")
    message = str(caught.value)
    assert f"Misspelt ({engine}, queries.sql)" in message
    assert "statuss" in message


@pytest.mark.parametrize("engine", list(SCHEMA))
def test_a_correct_query_generates(tmp_path: Path, engine: str) -> None:
    query = MISSPELT[engine]["subquery"].replace("statuss", "status")
    files = generate(_project(tmp_path, engine, query), "out")
    assert f"{engine}/queries.py" in files
    assert not any(name.endswith("vet.json") for name in files), "the manifest is not output"


def test_every_refused_query_is_reported_not_only_the_first() -> None:
    queries = (
        VetQuery("First", "a.sql", "SELECT nope FROM t"),
        VetQuery("Fine", "a.sql", "SELECT x FROM t WHERE x = :p1"),
        VetQuery("Second", "b.sql", "UPDATE t SET nada = 1"),
    )
    with pytest.raises(VetError) as caught:
        vet([Manifest("sqlite", (("CREATE TABLE t (x INTEGER)",),), queries)])
    message = str(caught.value)
    assert "First (sqlite, a.sql): no such column: nope" in message
    assert "Second (sqlite, b.sql): no such column: nada" in message
    assert "Fine" not in message


def test_a_missing_postgresql_server_is_named_with_the_setting() -> None:
    item = Manifest("postgresql", (), (VetQuery("Q", "q.sql", "SELECT 1"),))
    environ = {"DURABLE_CODEGEN_POSTGRES_URL": "postgresql://postgres@127.0.0.1:1/postgres"}
    with pytest.raises(VetError, match="DURABLE_CODEGEN_POSTGRES_URL"):
        vet([item], environ)
