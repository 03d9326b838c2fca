"""Turn a decoded request into a plan of what to emit: row classes, typed arguments, SQL texts.

Every refusal happens here, with a message that names the query, so the emitters only print.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from codegen import naming
from codegen.errors import CodegenError
from codegen.request import Column, Query, Request, Table
from codegen.sqltext import (
    SqliteText,
    postgresql_numbers,
    rewrite_sqlite,
    table_identifiers,
    template_sql,
)
from codegen.table_name import PATTERN_RULE, TABLE_NAME_PATTERN, reserved_problem
from codegen.tokenizer import POSTGRESQL, SQLITE, Kind, tokenize
from codegen.typemap import PyType, UnsupportedType, postgresql_type, sqlite_type

SUPPORTED_COMMANDS = (":one", ":many", ":exec", ":execrows")
# Names the generated method bodies use for themselves; an argument never takes one.
RESERVED_ARGUMENT_NAMES = frozenset(
    {"self", "conn", "args", "sql", "cur", "rows", "row"}
    # ... and the names those bodies call, which an argument of that name would shadow.
    | {"list", "psycopg", "tuple_row", "Json", "Jsonb", "closing", "sqlite3", "_expand_slices"}
)
# A field named like a type would shadow it for the annotations of the fields after it.
RESERVED_FIELD_NAMES = frozenset(
    {"int", "float", "str", "bool", "bytes", "list", "datetime", "Decimal", "UUID", "JsonValue"}
)
RESERVED_METHOD_NAMES = frozenset({"table"})  # the attribute holding the table name
# A comment line of a query that asks for a synchronous PostgreSQL method too.
SYNC_MARKER = "@sync"
_NAME_LINE = re.compile(r"--\s*name:\s*(\S+)")


def _query_file(filename: str, query_paths: tuple[str, ...]) -> Path | None:
    for query_path in query_paths:
        path = Path(query_path)
        if path.is_file() and path.name == filename:
            return path
        if path.is_dir() and (path / filename).is_file():
            return path / filename
    return None


def _own_comments(query: Query, query_paths: tuple[str, ...]) -> tuple[str, ...]:
    """The comments of ``query`` itself, without a comment block that a blank line separates.

    sqlc sends every `--` line between the previous statement and the query, blank lines
    dropped, so a file's opening comment arrives merged into its first query's comments. The
    file tells them apart: the query's own comment is the block of `--` lines touching its
    `-- name:` line (above it and below it).
    """
    path = _query_file(query.filename, query_paths)
    if path is None:
        return query.comments  # cannot tell: keep everything rather than guess
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    for index, line in enumerate(lines):
        match = _NAME_LINE.match(line)
        if match is None or match.group(1) != query.name:
            continue
        above = 0
        while index - above - 1 >= 0 and lines[index - above - 1].startswith("--"):
            above += 1
        below = 0
        while index + below + 1 < len(lines) and lines[index + below + 1].startswith("--"):
            below += 1
        own = above + below
        if own <= len(query.comments):
            return query.comments[len(query.comments) - own :]
    return query.comments


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: PyType
    nullable: bool
    is_array: bool

    @property
    def annotation(self) -> str:
        base = f"list[{self.type.annotation}]" if self.is_array else self.type.annotation
        return f"{base} | None" if self.nullable else base


@dataclass(frozen=True, slots=True)
class RowClass:
    name: str
    doc: str
    fields: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class Arg:
    name: str
    number: int
    type: PyType
    nullable: bool
    is_array: bool  # a PostgreSQL array parameter
    is_slice: bool  # an SQLite sqlc.slice parameter

    @property
    def annotation(self) -> str:
        if self.is_slice:
            return f"Sequence[{self.type.annotation}]"
        if not self.is_array:
            return f"{self.type.annotation} | None" if self.nullable else self.type.annotation
        # sqlc does not say whether array elements may be NULL, and a bulk insert through
        # unnest(@col::T[]) into a nullable column needs them to be; so every element may be
        # None (bound as SQL NULL). Sequence is covariant: a list[str] is still accepted.
        element = self.type.annotation
        if not self.type.includes_none:  # JsonValue already has None: the JSON null
            element += " | None"
        return f"Sequence[{element}] | None" if self.nullable else f"Sequence[{element}]"


@dataclass(frozen=True, slots=True)
class QueryPlan:
    name: str  # as written in `-- name:`
    cmd: str
    filename: str
    method: str
    constant: str
    doc: tuple[str, ...]
    args: tuple[Arg, ...]  # ordered by parameter number
    row: RowClass | None  # None for :exec, :execrows and single-column results
    value: Field | None  # the one column of a single-column :one/:many, returned as is
    sync: bool  # `-- @sync`: a synchronous caller uses it (PostgreSQL emits a sync method)
    postgresql_text: str  # the templated text, `$N` untouched (PostgreSQL only)
    sqlite_text: SqliteText | None  # the rewritten, templated text (SQLite only)
    table_identifiers: frozenset[str]  # the names in the text derived from the table name


@dataclass(frozen=True, slots=True)
class Package:
    dialect: str
    target: str
    table: str
    sqlc_version: str
    schema_paths: tuple[str, ...]
    query_paths: tuple[str, ...]
    table_rows: tuple[RowClass, ...]
    query_rows: tuple[RowClass, ...]  # the `<Query>Row` classes, in query order
    queries: tuple[QueryPlan, ...]


def _map_type(request: Request, column: Column) -> PyType:
    if request.engine == POSTGRESQL:
        return postgresql_type(column.type, request.catalog.enums)
    return sqlite_type(column.type)


def _fields(request: Request, columns: tuple[Column, ...], owner: str) -> tuple[Field, ...]:
    taken = set(RESERVED_FIELD_NAMES)
    fields = []
    for index, column in enumerate(columns, start=1):
        where = f"{owner}: column {column.name!r}" if column.name else f"{owner}: column #{index}"
        if column.embed_table is not None:
            raise CodegenError(f"{where}: sqlc.embed() is not supported; list the columns")
        if column.array_dims > 1:
            raise CodegenError(f"{where}: multi-dimensional arrays are not supported")
        try:
            type_ = _map_type(request, column)
        except UnsupportedType as error:
            raise CodegenError(f"{where}: {error}") from None
        name = naming.snake_case(column.name) or f"column_{index}"
        fields.append(
            Field(
                name=naming.unique(name, taken),
                type=type_,
                nullable=not column.not_null,
                is_array=column.is_array,
            )
        )
    return tuple(fields)


def _table_row(request: Request, table: Table) -> RowClass:
    default = request.catalog.default_schema
    schema = "" if table.rel.schema in ("", default) else table.rel.schema
    qualified = f"{schema}.{table.rel.name}" if schema else table.rel.name
    return RowClass(
        name=naming.table_class_name(table.rel.name, schema),
        doc=f"A row of the {qualified} table.",
        fields=_fields(request, table.columns, f"table {qualified}"),
    )


def _args(request: Request, query: Query) -> tuple[Arg, ...]:
    taken = set(RESERVED_ARGUMENT_NAMES)
    args = []
    for param in sorted(query.params, key=lambda p: p.number):
        column = param.column
        label = repr(column.name) if column.name else f"${param.number}"
        where = f"query {query.name}: parameter {label}"
        if column.is_sqlc_slice and request.engine == POSTGRESQL:
            raise CodegenError(
                f"{where}: sqlc.slice() is not supported on PostgreSQL; use = ANY(@ids::T[])"
            )
        if column.array_dims > 1:
            raise CodegenError(f"{where}: multi-dimensional arrays are not supported")
        try:
            type_ = _map_type(request, column)
        except UnsupportedType as error:
            raise CodegenError(f"{where}: {error}") from None
        name = naming.snake_case(column.name) or f"p{param.number}"
        args.append(
            Arg(
                name=naming.unique(name, taken),
                number=param.number,
                type=type_,
                nullable=not column.not_null,
                is_array=column.is_array,
                is_slice=column.is_sqlc_slice,
            )
        )
    return tuple(args)


def _same_columns(a: tuple[Field, ...], b: tuple[Field, ...]) -> bool:
    return len(a) == len(b) and all(
        (x.name, x.annotation, x.type.to_bool) == (y.name, y.annotation, y.type.to_bool)
        for x, y in zip(a, b, strict=True)
    )


def _result(
    request: Request, query: Query, tables: dict[str, RowClass]
) -> tuple[RowClass | None, Field | None]:
    """What a :one/:many returns: a row class, or the plain value of its only column."""
    if not query.columns:
        raise CodegenError(f"query {query.name}: {query.cmd} needs a query that returns columns")
    fields = _fields(request, query.columns, f"query {query.name}")
    if len(fields) == 1:
        # As sqlc's Go output does: one column is returned as itself, not in a one-field class.
        if query.cmd == ":one" and fields[0].nullable:
            raise CodegenError(
                f"query {query.name}: :one returning the nullable column {fields[0].name!r} "
                "cannot tell a NULL from no row; use coalesce() or :many"
            )
        return None, fields[0]
    sources = {column.table.name if column.table else "" for column in query.columns}
    if len(sources) == 1:
        table = tables.get(sources.pop())
        if table is not None and _same_columns(fields, table.fields):
            return table, None
    row = RowClass(
        name=naming.camel_case(query.name) + "Row",
        doc=f"The columns {query.name} returns.",
        fields=fields,
    )
    return row, None


def _postgresql_text(query: Query, table: str) -> str:
    """The templated text; its ``$N`` stay as they are, so they are only checked."""
    # strip(): the whitespace around sqlc's text is left over from the lines it removed.
    tokens = tokenize(query.text.strip(), POSTGRESQL)
    numbers = sorted(p.number for p in query.params)
    if numbers != list(range(1, len(numbers) + 1)):
        # RawCursor binds a sequence by position: $N must be element N-1.
        raise CodegenError(f"parameter numbers {numbers} have gaps")
    _check_placeholders(postgresql_numbers(tokens), query)
    return template_sql(tokens, table)


def _sqlite_text(query: Query, table: str) -> SqliteText:
    """The templated text with named placeholders, split around its slices."""
    tokens = tokenize(query.text.strip(), SQLITE)
    bare = any(t.kind is Kind.PARAM and t.number is None for t in tokens)
    if bare and any(p.column.is_named_param and not p.column.is_sqlc_slice for p in query.params):
        # sqlc then writes the named parameter as a bare `?` but numbers it after the
        # positional ones, so the text and the parameter list disagree.
        raise CodegenError("mixes @named parameters with bare `?`, which sqlc numbers wrongly")
    slices = {p.column.name: p.number for p in query.params if p.column.is_sqlc_slice}
    text = rewrite_sqlite(tokens, table, slices)
    _check_placeholders(text.numbers, query)
    return text


def _check_placeholders(used: frozenset[int], query: Query) -> None:
    wanted = {p.number for p in query.params}
    if used != wanted:
        raise CodegenError(
            f"placeholders {sorted(used)} do not match the parameters {sorted(wanted)} "
            "sqlc reported"
        )


def _query_plan(request: Request, query: Query, tables: dict[str, RowClass]) -> QueryPlan:
    if query.cmd not in SUPPORTED_COMMANDS:
        raise CodegenError(
            f"query {query.name}: {query.cmd} is not supported; "
            f"use one of {', '.join(SUPPORTED_COMMANDS)}"
        )
    method = naming.snake_case(query.name)
    if not method or method in RESERVED_METHOD_NAMES:
        raise CodegenError(f"query {query.name}: gives the method name {method!r}; rename it")
    args = _args(request, query)
    row, value = None, None
    if query.cmd in (":one", ":many"):
        row, value = _result(request, query, tables)
    text, sqlite_text = "", None
    try:
        if request.engine == POSTGRESQL:
            text = _postgresql_text(query, request.options.table)
        else:
            sqlite_text = _sqlite_text(query, request.options.table)
    except CodegenError as error:
        raise CodegenError(f"query {query.name}: {error}") from None
    comments = [line.strip() for line in _own_comments(query, request.query_paths)]
    sync = SYNC_MARKER in comments or request.options.sync == "all"
    doc = tuple(line for line in comments if line != SYNC_MARKER)
    identifiers = table_identifiers(tokenize(query.text, request.engine), request.options.table)
    return QueryPlan(
        name=query.name,
        cmd=query.cmd,
        filename=query.filename,
        method=method,
        constant=naming.upper_snake_case(query.name) + "_SQL",
        doc=doc,
        args=args,
        row=row,
        value=value,
        sync=sync,
        postgresql_text=text,
        sqlite_text=sqlite_text,
        table_identifiers=identifiers,
    )


def plan_package(request: Request) -> Package:
    if request.engine not in (POSTGRESQL, SQLITE):
        raise CodegenError(f"engine {request.engine!r} is not supported")
    default_table = request.options.table
    # Its length is checked against the limit the schema allows: table_name.table_name_limit().
    if not TABLE_NAME_PATTERN.fullmatch(default_table):
        raise CodegenError(f"plugin option table {default_table!r}: {PATTERN_RULE}")
    reserved = reserved_problem(default_table)
    if reserved is not None:
        raise CodegenError(f"plugin option table {default_table!r}: {reserved}")
    table_rows = tuple(_table_row(request, table) for table in request.catalog.tables)
    tables = {
        table.rel.name: row
        for table, row in zip(request.catalog.tables, table_rows, strict=True)
        if table.rel.schema in ("", request.catalog.default_schema)
    }
    queries = tuple(_query_plan(request, query, tables) for query in request.queries)
    query_rows: list[RowClass] = []
    for plan in queries:
        if plan.row is not None and plan.row not in table_rows and plan.row not in query_rows:
            query_rows.append(plan.row)
    _check_unique("classes", [row.name for row in (*table_rows, *query_rows)] + ["JsonValue"])
    _check_unique("methods", [plan.method for plan in queries])
    return Package(
        dialect=request.engine,
        target=request.options.target,
        table=request.options.table,
        sqlc_version=request.sqlc_version,
        schema_paths=request.schema_paths,
        query_paths=request.query_paths,
        table_rows=table_rows,
        query_rows=tuple(query_rows),
        queries=queries,
    )


def _check_unique(kinds: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise CodegenError(f"two generated {kinds} would both be named {name!r}; rename one")
        seen.add(name)
