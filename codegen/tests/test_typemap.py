"""Type mapping: every name sqlc reports for the types our schemas use, in both dialects."""

from __future__ import annotations

from pathlib import Path

import pytest

from codegen.analyze import plan_package
from codegen.request import Identifier, SqlEnum, decode_request
from codegen.tests.conftest import capture_request, write_project
from codegen.typemap import UnsupportedType, postgresql_type, sqlite_type


@pytest.mark.parametrize(
    ("schema", "name", "expected"),
    [
        # sqlc spells one type in several ways: catalog columns, params, aliases.
        ("pg_catalog", "int8", "int"),
        ("", "pg_catalog.int8", "int"),
        ("", "bigint", "int"),
        ("pg_catalog", "int4", "int"),
        ("", "integer", "int"),
        ("", "int2", "int"),
        ("", "serial", "int"),
        ("pg_catalog", "bool", "bool"),
        ("", "boolean", "bool"),
        ("", "text", "str"),
        ("pg_catalog", "varchar", "str"),
        ("", "pg_catalog.varchar", "str"),
        ("pg_catalog", "float8", "float"),
        ("", "real", "float"),
        ("pg_catalog", "numeric", "Decimal"),
        ("", "uuid", "UUID"),
        ("", "bytea", "bytes"),
        ("", "timestamptz", "datetime.datetime"),
        ("", "pg_catalog.timestamptz", "datetime.datetime"),
        ("pg_catalog", "timestamp", "datetime.datetime"),
        ("", "date", "datetime.date"),
        ("pg_catalog", "interval", "datetime.timedelta"),
        ("", "jsonb", "JsonValue"),
        ("pg_catalog", "json", "JsonValue"),
        ("", "pg_catalog.json", "JsonValue"),
    ],
)
def test_postgresql_names(schema: str, name: str, expected: str) -> None:
    assert postgresql_type(Identifier(schema, name), ()).annotation == expected


def test_postgresql_json_adapters() -> None:
    assert postgresql_type(Identifier("", "jsonb"), ()).json_adapter == "Jsonb"
    assert postgresql_type(Identifier("pg_catalog", "json"), ()).json_adapter == "Json"
    assert postgresql_type(Identifier("", "text"), ()).json_adapter == ""


def test_postgresql_enum_is_str() -> None:
    enums = (SqlEnum("public", "task_status", ("ready", "running")),)
    assert postgresql_type(Identifier("", "task_status"), enums).annotation == "str"


@pytest.mark.parametrize("name", ["any", "inet", "pg_catalog.tsvector", "void", "mystery"])
def test_postgresql_refuses_what_it_cannot_type(name: str) -> None:
    with pytest.raises(UnsupportedType):
        postgresql_type(Identifier("", name), ())


@pytest.mark.parametrize(
    ("name", "expected", "to_bool"),
    [
        ("INTEGER", "int", False),
        ("integer", "int", False),  # CAST(… AS integer)
        ("BIGINT", "int", False),
        ("TEXT", "str", False),
        ("text", "str", False),
        ("VARCHAR(64)", "str", False),
        ("CLOB", "str", False),
        ("JSON", "str", False),
        ("BOOLEAN", "bool", True),
        ("boolean", "bool", True),
        ("bool", "bool", True),  # what sqlc reports for a comparison in RETURNING
        ("REAL", "float", False),
        ("DOUBLE PRECISION", "float", False),
        ("FLOAT", "float", False),
        ("BLOB", "bytes", False),
        ("NUMERIC", "int | float", False),
        ("DATETIME", "int | float", False),
    ],
)
def test_sqlite_affinity(name: str, expected: str, to_bool: bool) -> None:
    mapped = sqlite_type(Identifier("", name))
    assert (mapped.annotation, mapped.to_bool) == (expected, to_bool)


@pytest.mark.parametrize("name", ["any", ""])
def test_sqlite_refuses_any(name: str) -> None:
    with pytest.raises(UnsupportedType):
        sqlite_type(Identifier("", name))


def test_postgresql_enum_column_through_sqlc(tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "project",
        "postgresql",
        schema="CREATE TYPE mood AS ENUM ('ok', 'sad');\n"
        "CREATE TABLE people (id bigint PRIMARY KEY, mood mood NOT NULL);",
        queries="-- name: ByMood :many\nSELECT * FROM people WHERE mood = @mood;",
    )
    work = tmp_path / "capture"
    work.mkdir()
    request = decode_request(capture_request(project, "postgresql", work))
    assert [(e.name, e.values) for e in request.catalog.enums] == [("mood", ("ok", "sad"))]
    package = plan_package(request)
    assert [f.annotation for f in package.table_rows[0].fields] == ["int", "str"]
    assert [a.annotation for a in package.queries[0].args] == ["str"]


def _column_annotations(
    request: bytes, work: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    monkeypatch.chdir(work)
    package = plan_package(decode_request(request))
    return {
        f"{row.name}.{field.name}": field.annotation
        for row in (*package.table_rows, *package.query_rows)
        for field in row.fields
    }


def test_fixture_schema_types_through_real_sqlc_requests(
    fixture_requests: dict[str, tuple[Path, bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    work, request = fixture_requests["postgresql"]
    pg = _column_annotations(request, work, monkeypatch)
    assert {k: v for k, v in pg.items() if k.startswith("DurableTaskExecution.")} == {
        "DurableTaskExecution.id": "int",
        "DurableTaskExecution.execution_id": "str",
        "DurableTaskExecution.status": "str",
        "DurableTaskExecution.attempts": "int",
        "DurableTaskExecution.priority": "int",
        "DurableTaskExecution.is_closed": "bool",
        "DurableTaskExecution.input": "JsonValue",
        "DurableTaskExecution.meta": "JsonValue | None",
        "DurableTaskExecution.tags": "list[str]",
        "DurableTaskExecution.score": "float | None",
        "DurableTaskExecution.cost": "Decimal | None",
        "DurableTaskExecution.trace_id": "UUID | None",
        "DurableTaskExecution.payload": "bytes | None",
        "DurableTaskExecution.label": "str | None",
        "DurableTaskExecution.created_at": "datetime.datetime",
        "DurableTaskExecution.finished_at": "datetime.datetime | None",
    }
    assert pg["CountByStatusRow.total"] == "int"  # count(*) is bigint
    assert pg["CountByStatusRow.any_closed"] == "bool"

    work, request = fixture_requests["sqlite"]
    lite = _column_annotations(request, work, monkeypatch)
    assert {k: v for k, v in lite.items() if k.startswith("DurableTaskExecution.")} == {
        "DurableTaskExecution.id": "int",
        "DurableTaskExecution.execution_id": "str",
        "DurableTaskExecution.status": "str",
        "DurableTaskExecution.attempts": "int",
        "DurableTaskExecution.is_closed": "bool",
        "DurableTaskExecution.needs_cancel": "bool | None",
        "DurableTaskExecution.input": "str",
        "DurableTaskExecution.score": "float | None",
        "DurableTaskExecution.payload": "bytes | None",
        "DurableTaskExecution.label": "str | None",
        "DurableTaskExecution.cost": "int | float | None",
        "DurableTaskExecution.created_at": "int",
        "DurableTaskExecution.updated_at": "int",
    }
    assert lite["CountOpenRow.any_closed"] == "bool"  # CAST(… AS BOOLEAN)
    assert lite["BumpAttemptsRow.column_2"] == "bool"  # sqlc drops the alias of an expression


_EXPECTED_PROJECT_TYPES = {
    # Every column type of the project's real schemas maps to one of these.
    "postgresql": {"int", "str", "bool", "JsonValue", "datetime.datetime"},
    "sqlite": {"int", "str", "bool"},
}


def test_real_schema_types_all_map(
    real_requests: dict[str, tuple[Path, bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for engine, (work, request) in real_requests.items():
        annotations = _column_annotations(request, work, monkeypatch)
        assert annotations, engine
        bases = {a.removesuffix(" | None") for a in annotations.values()}
        assert bases <= _EXPECTED_PROJECT_TYPES[engine], (engine, bases)
