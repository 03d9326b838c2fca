"""``queries.py`` for SQLite with the stdlib ``sqlite3`` module: one ``Queries`` class.

Placeholders were rewritten to named form (``:pN``) and arguments are bound with a dict. A
query with ``sqlc.slice`` keeps its text as parts around each slice; ``_expand_slices`` joins
them at run time with one ``:pN_i`` per element, or ``NULL`` for an empty list.
"""

from __future__ import annotations

from codegen.analyze import Package, QueryPlan
from codegen.emit_common import DIALECT_TITLES, converter, converter_name, head, sql_constant
from codegen.pysource import (
    INDENT,
    Imports,
    bracketed,
    docstring,
    return_call,
    return_list_comprehension,
    source,
    string_literal,
)
from codegen.typemap import Import

_EXPAND_SLICES = '''\
def _expand_slices(
    parts: tuple[str, ...],
    args: dict[str, object],
    slices: Sequence[tuple[str, Sequence[object]]],
) -> str:
    """Join `parts` around each slice, binding one `:<name>_<i>` per element into `args`.

    An empty slice becomes NULL: `x IN (NULL)` and `x NOT IN (NULL)` match no row.
    """
    pieces = [parts[0]]
    for (name, values), part in zip(slices, parts[1:], strict=True):
        if values:
            names = [f"{name}_{i}" for i in range(len(values))]
            args.update(zip(names, values, strict=True))
            pieces.append(", ".join(f":{n}" for n in names))
        else:
            pieces.append("NULL")
        pieces.append(part)
    return "".join(pieces)
'''


def queries_module(package: Package) -> str:
    imports = Imports()
    imports.add(Import("sqlite3"), Import("contextlib", "closing"))
    imports.add_from("._table", "DEFAULT_TABLE", "validate_table_name")
    rows = []
    has_slices = False
    for plan in package.queries:
        if plan.row is not None and plan.row not in rows:
            rows.append(plan.row)
            imports.add_from(".models", plan.row.name)
        for arg in plan.args:
            imports.add(*arg.type.imports)
            has_slices = has_slices or arg.is_slice
    if rows:
        imports.add_from("typing", "Any")
    if has_slices:
        imports.add_from("collections.abc", "Sequence")
    doc = [
        f"Typed {DIALECT_TITLES[package.dialect]} queries for the sqlite3 module, from "
        f"{', '.join(package.query_paths)}.",
        "",
        "Every SQL text is a template in which `{table}` stands for the table name; a `Queries`",
        "object fills it in once, when it is created.",
    ]
    blocks = [head(package, doc, imports)]
    for plan in package.queries:
        assert plan.sqlite_text is not None
        parts = plan.sqlite_text.parts
        blocks.append(sql_constant(plan, parts if plan.sqlite_text.holes else parts[0]))
    if has_slices:
        blocks.append(_EXPAND_SLICES.splitlines())
    converters = [converter(row, convert_bools=True) for row in rows]
    if converters:
        converters[0] = ["# sqlite3 rows are plain tuples of Any.", *converters[0]]
    blocks += converters
    blocks.append(_queries_class(package))
    return source(blocks, "queries.py")


def _queries_class(package: Package) -> list[str]:
    lines = [
        "class Queries:",
        '    """The queries; each method runs one statement on `conn`."""',
        "",
        "    def __init__(self, table: str = DEFAULT_TABLE) -> None:",
        "        self.table = validate_table_name(table)",
        "",
        "        def fill(template: str) -> str:",
        "            return template.format(table=table)",
        "",
    ]
    if any(plan.sqlite_text and plan.sqlite_text.holes for plan in package.queries):
        lines += [
            "        def fill_parts(parts: tuple[str, ...]) -> tuple[str, ...]:",
            "            return tuple(map(fill, parts))",
            "",
        ]
    for plan in package.queries:
        assert plan.sqlite_text is not None
        function = "fill_parts" if plan.sqlite_text.holes else "fill"
        lines += bracketed(INDENT * 2, f"self._{plan.method} = {function}(", [plan.constant], ")")
    for plan in package.queries:
        lines += ["", *_method(plan)]
    return lines


def _return_annotation(plan: QueryPlan) -> str:
    if plan.cmd == ":one":
        assert plan.row is not None
        return f"{plan.row.name} | None"
    if plan.cmd == ":many":
        assert plan.row is not None
        return f"list[{plan.row.name}]"
    return "int" if plan.cmd == ":execrows" else "None"


def _method(plan: QueryPlan) -> list[str]:
    assert plan.sqlite_text is not None
    pad = INDENT * 2
    params = ["self", "conn: sqlite3.Connection"]
    if plan.args:
        params += ["*", *(f"{arg.name}: {arg.annotation}" for arg in plan.args)]
    lines = [f"{INDENT}def {plan.method}("]
    lines += [f"{pad}{param}," for param in params]
    lines.append(f"{INDENT}) -> {_return_annotation(plan)}:")
    lines += docstring(plan.doc, pad)
    plain = [arg for arg in plan.args if not arg.is_slice]
    by_number = {arg.number: arg for arg in plan.args}
    if plan.args:
        items = [f"{string_literal(f'p{arg.number}')}: {arg.name}" for arg in plain]
        lines += bracketed(pad, "args: dict[str, object] = {", items, "}")
    sql = f"self._{plan.method}"
    if plan.sqlite_text.holes:
        slices = [
            f"({string_literal(f'p{hole.number}')}, {by_number[hole.number].name})"
            for hole in plan.sqlite_text.holes
        ]
        slices_list = f"[{', '.join(slices)}]"
        lines += bracketed(pad, "sql = _expand_slices(", [sql, "args", slices_list], ")")
        sql = "sql"
    lines.append(f"{pad}with closing(conn.cursor()) as cur:")
    lines += bracketed(pad + INDENT, "cur.execute(", [sql, "args"] if plan.args else [sql], ")")
    if plan.cmd == ":one":
        assert plan.row is not None
        lines.append(f"{pad}{INDENT}row = cur.fetchone()")
        lines += [f"{pad}if row is None:", f"{pad}{INDENT}return None"]
        lines += return_call(pad, converter_name(plan.row), "row")
    elif plan.cmd == ":many":
        assert plan.row is not None
        lines.append(f"{pad}{INDENT}rows = cur.fetchall()")
        lines += return_list_comprehension(
            pad, f"{converter_name(plan.row)}(row)", "for row in rows"
        )
    elif plan.cmd == ":execrows":
        lines.append(f"{pad}{INDENT}return cur.rowcount")
    return lines
