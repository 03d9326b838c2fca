"""Python names for SQL names, including awkward ones that would shadow or clash."""

from __future__ import annotations

import importlib.util
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from codegen import naming
from codegen.analyze import plan_package
from codegen.regenerate import REPO_ROOT, generate
from codegen.request import decode_request
from codegen.tests.conftest import capture_request, write_project


@pytest.mark.parametrize(
    ("name", "snake", "camel"),
    [
        ("GetTasksByIDs", "get_tasks_by_ids", "GetTasksByIDs"),
        ("get_by_ids", "get_by_ids", "GetByIds"),
        ("HTTPServerLog", "http_server_log", "HTTPServerLog"),
        ("ListV2Items", "list_v2_items", "ListV2Items"),
        ("execution_id", "execution_id", "ExecutionId"),
        ("class", "class_", "Class"),
    ],
)
def test_case_conversions(name: str, snake: str, camel: str) -> None:
    assert naming.snake_case(name) == snake
    assert naming.camel_case(name) == camel


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("durable_task_executions", "DurableTaskExecution"),
        ("durable_task_executions_migrations", "DurableTaskExecutionsMigration"),
        ("statuses", "Status"),
        ("categories", "Category"),
        ("processes", "Process"),
        ("status", "Status"),
        ("data", "Data"),
    ],
)
def test_table_class_names(table: str, expected: str) -> None:
    assert naming.table_class_name(table) == expected


AWKWARD_SCHEMA = """
CREATE TABLE things (
    id INTEGER PRIMARY KEY,
    "row" TEXT NOT NULL,
    "int" INTEGER NOT NULL,
    "list" TEXT,
    "from" TEXT
);
"""

AWKWARD_QUERIES = """
-- name: FindThings :many
SELECT * FROM things WHERE "row" = @row AND "list" IS @list AND "from" = @from;

-- name: Pairs :many
SELECT a.id, b.id FROM things a JOIN things b ON a."int" < b."int" ORDER BY a.id, b.id;
"""


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path / "__init__.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_awkward_names_are_renamed_and_still_work(tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "project",
        "sqlite",
        schema=AWKWARD_SCHEMA,
        queries=AWKWARD_QUERIES,
        table="things",
    )
    work = tmp_path / "capture"
    work.mkdir()
    package = plan_package(decode_request(capture_request(project, "sqlite", work)))
    (row,) = package.table_rows
    assert [f.name for f in row.fields] == ["id", "row", "int_2", "list_2", "from_"]
    find = package.queries[0]
    assert [a.name for a in find.args] == ["row_2", "list_2", "from_"]
    pairs_row = package.queries[1].row
    assert pairs_row is not None
    assert [f.name for f in pairs_row.fields] == ["id", "id_2"]

    files = generate(project, "out")
    out = tmp_path / "awkward"
    for name, contents in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(contents)
    mypy = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert mypy.returncode == 0, mypy.stdout

    generated = _load(out / "sqlite", "awkward_sqlite")
    queries = generated.Queries("things")
    conn = sqlite3.connect(tmp_path / "awkward.db")
    for migration in generated.migrations_for_table("things"):
        for statement in migration.statements:
            conn.execute(statement)
    conn.execute("""INSERT INTO things ("row", "int", "list", "from") VALUES ('r', 1, NULL, 'f')""")
    conn.execute("""INSERT INTO things ("row", "int", "list", "from") VALUES ('r', 2, 'l', 'f')""")
    found = queries.find_things(conn, row_2="r", list_2=None, from_="f")
    assert [(t.row, t.int_2, t.list_2, t.from_) for t in found] == [("r", 1, None, "f")]
    assert [(p.id, p.id_2) for p in queries.pairs(conn)] == [(1, 2)]
