"""``queries.py`` for SQLite with the stdlib ``sqlite3`` module: one ``Queries`` class.

Placeholders were rewritten to named form (``:pN``) and arguments are bound with a dict. A
``sqlc.slice`` is a ``{pN}`` hole in the text; ``_expand_slices`` fills it at run time with one
``:pN_i`` per element, or ``NULL`` for an empty list.
"""

from __future__ import annotations

from codegen.analyze import Package, QueryPlan
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
from codegen.pysource import INDENT, Imports, bracketed, docstring, source, string_literal
from codegen.typemap import Import

_EXPAND_SLICES = '''\
def _expand_slices(
    template: str,
    table: str,
    args: dict[str, object],
    slices: Sequence[tuple[str, Sequence[object]]],
) -> str:
    """Fill `template`: the table name, and one `:<name>_<i>` per element of each slice.

    The elements are bound into `args`. An empty slice becomes NULL: `x IN (NULL)` and
    `x NOT IN (NULL)` match no row.
    """
    holes = {}
    for name, values in slices:
        if values:
            names = [f"{name}_{i}" for i in range(len(values))]
            args.update(zip(names, values, strict=True))
            holes[name] = ", ".join(f":{n}" for n in names)
        else:
            holes[name] = "NULL"
    return template.format(table=table, **holes)
'''


def _template(plan: QueryPlan) -> str:
    """One SQL literal per query: a slice is a `{pN}` hole, filled when the query runs."""
    assert plan.sqlite_text is not None
    parts = plan.sqlite_text.parts
    text = parts[0]
    for hole, part in zip(plan.sqlite_text.holes, parts[1:], strict=True):
        text += f"{{p{hole.number}}}{part}"
    return text


def queries_module(package: Package) -> str:
    imports = Imports()
    imports.add(Import("sqlite3"), Import("contextlib", "closing"))
    imports.add_from("._table", "DEFAULT_TABLE", "validate_table_name")
    rows = []
    has_slices = False
    for plan in package.queries:
        result_imports(plan, imports)
        if plan.row is not None and plan.row not in rows:
            rows.append(plan.row)
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
        "In each SQL text `{table}` stands for the table name and `{pN}` for the elements of a",
        "list parameter (sqlc.slice); `Queries` fills them in.",
    ]
    blocks = [head(package, doc, imports)]
    blocks += [sql_constant(plan, _template(plan)) for plan in package.queries]
    if has_slices:
        blocks.append(_EXPAND_SLICES.splitlines())
    converters = [converter(row, convert_bools=True) for row in rows]
    if converters:
        converters[0] = ["# sqlite3 rows are plain tuples of Any.", *converters[0]]
    blocks += converters
    blocks.append(texts_class())
    blocks.append(_queries_class(package))
    return source(blocks, "queries.py")


def _queries_class(package: Package) -> list[str]:
    lines = [
        "class Queries(_Texts):",
        '    """The queries; each method runs one statement on `conn`."""',
    ]
    for plan in package.queries:
        lines += ["", *_method(plan)]
    return lines


def _method(plan: QueryPlan) -> list[str]:
    assert plan.sqlite_text is not None
    pad = INDENT * 2
    params = ["self", "conn: sqlite3.Connection"]
    if plan.args:
        params += ["*", *(f"{arg.name}: {arg.annotation}" for arg in plan.args)]
    lines = [f"{INDENT}def {plan.method}("]
    lines += [f"{pad}{param}," for param in params]
    lines.append(f"{INDENT}) -> {return_annotation(plan)}:")
    lines += docstring(plan.doc, pad)
    plain = [arg for arg in plan.args if not arg.is_slice]
    by_number = {arg.number: arg for arg in plan.args}
    if plan.args:
        items = [f"{string_literal(f'p{arg.number}')}: {arg.name}" for arg in plain]
        lines += bracketed(pad, "args: dict[str, object] = {", items, "}")
    sql = f"self._sql({plan.constant})"
    if plan.sqlite_text.holes:
        numbers = list(dict.fromkeys(hole.number for hole in plan.sqlite_text.holes))
        slices = [f"({string_literal(f'p{n}')}, {by_number[n].name})" for n in numbers]
        slices_list = f"[{', '.join(slices)}]"
        lines += bracketed(
            pad, "sql = _expand_slices(", [plan.constant, "self.table", "args", slices_list], ")"
        )
        sql = "sql"
    lines.append(f"{pad}with closing(conn.cursor()) as cur:")
    lines += bracketed(pad + INDENT, "cur.execute(", [sql, "args"] if plan.args else [sql], ")")
    lines += fetch_lines(plan, pad, "", convert_bools=True)
    return lines
