"""Decode sqlc's JSON ``GenerateRequest`` into plain dataclasses, and encode the response.

sqlc speaks protojson with proto field names: every field is present (defaults included) and
``bytes`` fields are base64. Only the fields the generator uses are kept. ``pg_catalog`` and
``information_schema`` are dropped on the way in: they are about a megabyte of tables that no
user query needs a model for.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from codegen.errors import CodegenError

SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema"})
TARGETS = {"psycopg": "postgresql", "sqlite3": "sqlite"}  # target option -> sqlc engine


@dataclass(frozen=True, slots=True)
class Identifier:
    schema: str
    name: str


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    not_null: bool
    is_array: bool
    array_dims: int
    type: Identifier
    table: Identifier | None
    is_sqlc_slice: bool
    is_named_param: bool
    embed_table: Identifier | None


@dataclass(frozen=True, slots=True)
class Table:
    rel: Identifier
    columns: tuple[Column, ...]


@dataclass(frozen=True, slots=True)
class SqlEnum:
    schema: str
    name: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Catalog:
    default_schema: str
    tables: tuple[Table, ...]
    enums: tuple[SqlEnum, ...]


@dataclass(frozen=True, slots=True)
class Parameter:
    number: int
    column: Column


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    cmd: str
    text: str
    filename: str
    comments: tuple[str, ...]
    columns: tuple[Column, ...]
    params: tuple[Parameter, ...]


@dataclass(frozen=True, slots=True)
class Options:
    target: str  # "psycopg" or "sqlite3"
    table: str  # the default table name; SQL identifiers derived from it become templates
    sync: str  # psycopg: "marked" (sync methods only for `-- @sync` queries) or "all"


@dataclass(frozen=True, slots=True)
class Request:
    engine: str
    schema_paths: tuple[str, ...]
    query_paths: tuple[str, ...]
    catalog: Catalog
    queries: tuple[Query, ...]
    sqlc_version: str
    options: Options


# The decoded JSON is untyped; these helpers check each field's shape once, here, so that the
# rest of the generator works with precise types.


def _obj(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise CodegenError(f"malformed request: {where} is not an object")
    return value


def _list(value: object, where: str) -> Sequence[object]:
    if value is None:  # protojson writes an empty repeated field as [] but be lenient
        return ()
    if not isinstance(value, list):
        raise CodegenError(f"malformed request: {where} is not a list")
    return value


def _str(obj: Mapping[str, object], key: str) -> str:
    value = obj.get(key, "")
    if not isinstance(value, str):
        raise CodegenError(f"malformed request: {key!r} is not a string")
    return value


def _bool(obj: Mapping[str, object], key: str) -> bool:
    value = obj.get(key, False)
    if not isinstance(value, bool):
        raise CodegenError(f"malformed request: {key!r} is not a boolean")
    return value


def _int(obj: Mapping[str, object], key: str) -> int:
    value = obj.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool):
        raise CodegenError(f"malformed request: {key!r} is not an integer")
    return value


def _identifier(value: object) -> Identifier | None:
    if value is None:
        return None
    obj = _obj(value, "identifier")
    return Identifier(schema=_str(obj, "schema"), name=_str(obj, "name"))


def _column(value: object) -> Column:
    obj = _obj(value, "column")
    type_ = _identifier(obj.get("type")) or Identifier("", "")
    return Column(
        name=_str(obj, "name"),
        not_null=_bool(obj, "not_null"),
        is_array=_bool(obj, "is_array"),
        array_dims=_int(obj, "array_dims"),
        type=type_,
        table=_identifier(obj.get("table")),
        is_sqlc_slice=_bool(obj, "is_sqlc_slice"),
        is_named_param=_bool(obj, "is_named_param"),
        embed_table=_identifier(obj.get("embed_table")),
    )


def _catalog(value: object) -> Catalog:
    obj = _obj(value, "catalog")
    default_schema = _str(obj, "default_schema")
    tables: list[Table] = []
    enums: list[SqlEnum] = []
    for schema_value in _list(obj.get("schemas"), "catalog.schemas"):
        schema = _obj(schema_value, "schema")
        schema_name = _str(schema, "name")
        if schema_name in SYSTEM_SCHEMAS:
            continue
        for table_value in _list(schema.get("tables"), "schema.tables"):
            table = _obj(table_value, "table")
            rel = _identifier(table.get("rel")) or Identifier("", "")
            columns = tuple(_column(c) for c in _list(table.get("columns"), "table.columns"))
            tables.append(Table(rel=rel, columns=columns))
        for enum_value in _list(schema.get("enums"), "schema.enums"):
            enum = _obj(enum_value, "enum")
            values = tuple(str(v) for v in _list(enum.get("vals"), "enum.vals"))
            enums.append(SqlEnum(schema=schema_name, name=_str(enum, "name"), values=values))
    return Catalog(default_schema=default_schema, tables=tuple(tables), enums=tuple(enums))


def _query(value: object) -> Query:
    obj = _obj(value, "query")
    params = []
    for param_value in _list(obj.get("params"), "query.params"):
        param = _obj(param_value, "param")
        params.append(Parameter(number=_int(param, "number"), column=_column(param.get("column"))))
    return Query(
        name=_str(obj, "name"),
        cmd=_str(obj, "cmd"),
        text=_str(obj, "text"),
        filename=_str(obj, "filename"),
        comments=tuple(str(c) for c in _list(obj.get("comments"), "query.comments")),
        columns=tuple(_column(c) for c in _list(obj.get("columns"), "query.columns")),
        params=tuple(params),
    )


def _options(encoded: str) -> Options:
    try:
        raw = json.loads(base64.b64decode(encoded)) if encoded else {}
    except ValueError as error:
        raise CodegenError(f"malformed plugin options: {error}") from error
    options = _obj(raw, "plugin options")
    unknown = sorted(set(options) - {"target", "table", "sync"})
    if unknown:
        raise CodegenError(
            f"unknown plugin option(s) {', '.join(unknown)}; known: target, table, sync"
        )
    target = _str(options, "target")
    if target not in TARGETS:
        raise CodegenError(
            f"plugin option target must be one of {', '.join(TARGETS)}, not {target!r}"
        )
    table = _str(options, "table")
    if not table:
        raise CodegenError("plugin option table is required (the default table name)")
    sync = _str(options, "sync") if "sync" in options else "marked"
    if sync not in ("marked", "all"):
        raise CodegenError(f"plugin option sync must be 'marked' or 'all', not {sync!r}")
    return Options(target=target, table=table, sync=sync)


def decode_request(data: bytes) -> Request:
    """Parse the request sqlc writes to the plugin's stdin (``format: json``)."""
    try:
        raw = json.loads(data)
    except ValueError as error:
        raise CodegenError(f"the request is not JSON ({error}); is `format: json` set?") from error
    obj = _obj(raw, "request")
    settings = _obj(obj.get("settings"), "settings")
    request = Request(
        engine=_str(settings, "engine"),
        schema_paths=tuple(str(p) for p in _list(settings.get("schema"), "settings.schema")),
        query_paths=tuple(str(p) for p in _list(settings.get("queries"), "settings.queries")),
        catalog=_catalog(obj.get("catalog")),
        queries=tuple(_query(q) for q in _list(obj.get("queries"), "queries")),
        sqlc_version=_str(obj, "sqlc_version"),
        options=_options(_str(obj, "plugin_options")),
    )
    expected_engine = TARGETS[request.options.target]
    if request.engine != expected_engine:
        raise CodegenError(
            f"target {request.options.target!r} needs engine {expected_engine!r}, "
            f"not {request.engine!r}"
        )
    return request


def encode_response(files: Mapping[str, str]) -> bytes:
    """The response sqlc reads from stdout: file contents are ``bytes``, hence base64."""
    entries = [
        {"name": name, "contents": base64.b64encode(text.encode()).decode("ascii")}
        for name, text in sorted(files.items())
    ]
    return json.dumps({"files": entries}, sort_keys=True).encode()
