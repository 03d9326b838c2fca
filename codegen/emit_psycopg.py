"""``queries.py`` for PostgreSQL with psycopg 3: ``AsyncQueries`` and its sync twin ``Queries``.

The SQL keeps sqlc's ``$N`` placeholders: psycopg's RawCursor binds a sequence by position, so
the arguments go in a tuple ordered by parameter number (the order sqlc numbered them in, not
the order they appear in the text). Nothing in the text needs escaping for it.
"""

from __future__ import annotations

from codegen.analyze import Arg, Package, QueryPlan
from codegen.emit_common import (
    DIALECT_TITLES,
    converter,
    fetch_lines,
    head,
    result_imports,
    return_annotation,
    sql_constant,
    texts_class,
)
from codegen.pysource import INDENT, Imports, bracketed, docstring, source
from codegen.typemap import Import

_ANY_COMMENT = (
    "# Connections are typed `Connection[Any]`: whatever row factory the caller's connection",
    "# has does not matter, because every cursor here is opened with row_factory=tuple_row.",
)


def queries_module(package: Package) -> str:
    imports = Imports()
    imports.add(Import("psycopg"), Import("psycopg.rows", "tuple_row"), Import("typing", "Any"))
    imports.add_from("._table", "DEFAULT_TABLE", "validate_table_name")
    rows = []
    for plan in package.queries:
        result_imports(plan, imports)
        if plan.row is not None and plan.row not in rows:
            rows.append(plan.row)
        for arg in plan.args:
            imports.add(*arg.type.imports)
            if arg.type.from_models:
                imports.add_from(".models", arg.type.annotation)
            if arg.type.json_adapter:
                imports.add_from("psycopg.types.json", arg.type.json_adapter)
            if arg.is_array:
                imports.add_from("collections.abc", "Sequence")
    doc = [
        f"Typed {DIALECT_TITLES[package.dialect]} queries for psycopg 3, from "
        f"{', '.join(package.query_paths)}.",
        "",
        "In each SQL text `{table}` stands for the table name, which the query class fills in.",
        "`AsyncQueries` has every query; the synchronous `Queries` only those a synchronous",
        "caller uses (marked `-- @sync` in the SQL).",
    ]
    blocks = [head(package, doc, imports)]
    blocks += [sql_constant(plan, plan.postgresql_text) for plan in package.queries]
    converters = [converter(row, convert_bools=False) for row in rows]
    if converters:
        converters[0] = ["# Rows arrive as plain tuples (tuple_row) of Any.", *converters[0]]
    blocks += converters
    blocks.append(texts_class())
    blocks.append([*_ANY_COMMENT, *_queries_class(package, is_async=True)])
    if has_sync(package):
        blocks.append(_queries_class(package, is_async=False))
    return source(blocks, "queries.py")


def has_sync(package: Package) -> bool:
    """Whether any query asks for a synchronous method (then `Queries` exists)."""
    return any(plan.sync for plan in package.queries)


def _queries_class(package: Package, *, is_async: bool) -> list[str]:
    name = "AsyncQueries" if is_async else "Queries"
    kind = "for asyncio" if is_async else "synchronous"
    lines = [
        f"class {name}(_Texts):",
        f'    """The queries, {kind}; each method runs one statement on `conn`."""',
    ]
    for plan in package.queries:
        if is_async or plan.sync:
            lines += ["", *_method(plan, is_async=is_async)]
    return lines


def _bind(arg: Arg) -> str:
    """The expression that adapts one argument for psycopg."""
    value = arg.name
    if arg.type.json_adapter and arg.is_array:
        value = f"[{arg.type.json_adapter}(v) for v in {arg.name}]"
    elif arg.type.json_adapter:
        value = f"{arg.type.json_adapter}({arg.name})"
    elif arg.is_array:
        value = f"list({arg.name})"  # psycopg adapts a list (not any sequence) as an array
    if value != arg.name and arg.nullable:
        value = f"None if {arg.name} is None else {value}"
    return value


def _method(plan: QueryPlan, *, is_async: bool) -> list[str]:
    pad = INDENT * 2
    conn = "psycopg.AsyncConnection[Any]" if is_async else "psycopg.Connection[Any]"
    params = ["self", f"conn: {conn}"]
    if plan.args:
        params += ["*", *(f"{arg.name}: {arg.annotation}" for arg in plan.args)]
    lines = [f"{INDENT}{'async ' if is_async else ''}def {plan.method}("]
    lines += [f"{pad}{param}," for param in params]
    lines.append(f"{INDENT}) -> {return_annotation(plan)}:")
    lines += docstring(plan.doc, pad)
    await_ = "await " if is_async else ""
    execute_args = [f"self._sql({plan.constant})"]
    if plan.args:
        lines += bracketed(pad, "args = (", [_bind(arg) for arg in plan.args], ")", is_tuple=True)
        execute_args.append("args")
    cursor = "psycopg.AsyncRawCursor" if is_async else "psycopg.RawCursor"
    lines.append(
        f"{pad}{'async ' if is_async else ''}with {cursor}(conn, row_factory=tuple_row) as cur:"
    )
    lines += bracketed(pad + INDENT, f"{await_}cur.execute(", execute_args, ")")
    lines += fetch_lines(plan, pad, await_, convert_bools=False)
    return lines
