"""The modules every target emits: ``__init__``, ``_table``, ``models`` and ``migrations``,
plus the pieces of ``queries`` that do not depend on the driver."""

from __future__ import annotations

from collections.abc import Sequence

from codegen.analyze import Field, Package, QueryPlan, RowClass
from codegen.naming import snake_case
from codegen.pysource import (
    HEADER,
    INDENT,
    Imports,
    bracketed,
    docstring,
    return_call,
    return_list_comprehension,
    source,
    string_assignment,
    string_literal,
    string_tuple,
)
from codegen.schema_files import MigrationFile
from codegen.table_name import IDENTIFIER_MAX_BYTES, RESERVED_RULE, RESERVED_WORDS, TableNameLimit
from codegen.typemap import Import

DIALECT_TITLES = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}

JSON_VALUE = [
    "# A JSON document as psycopg decodes it (json.loads), recursively.",
    'JsonValue: TypeAlias = dict[str, "JsonValue"] | list["JsonValue"] | str | int | float | bool'
    " | None",
]


_VALIDATE_TABLE_NAME = '''\
def validate_table_name(table: str) -> str:
    """Return `table` if it is safe to paste into SQL, else raise ValueError saying why.

    Only plain identifiers are accepted (so nothing can be injected), and the length
    leaves room for every name the schema derives from the table name (indexes,
    constraints, the migrations table) under PostgreSQL's 63-byte identifier limit,
    which would otherwise silently truncate them.
    """
    if (
        not isinstance(table, str)
        or _TABLE_NAME.fullmatch(table) is None
        or len(table) > TABLE_NAME_MAX_LENGTH
    ):
        raise ValueError(
            f"invalid table name {table!r}: a table name must match "
            f"^[A-Za-z_][A-Za-z0-9_]*$ and be at most {TABLE_NAME_MAX_LENGTH} characters "
            f"(the longest name derived from it, {_LONGEST_DERIVED_NAME}, must fit "
            "PostgreSQL's 63-byte identifier limit)"
        )
    if table.lower() in _RESERVED_WORDS:
        raise ValueError(f"invalid table name {table!r}: {_RESERVED_RULE}")
    return table
'''

_MIGRATION_CLASS = '''\
@dataclass(frozen=True, slots=True)
class Migration:
    """One schema file: its statements in order, comments removed."""

    version: int
    name: str
    statements: tuple[str, ...]
'''

_MIGRATIONS_FOR_TABLE = '''\
def migrations_for_table(table: str) -> tuple[Migration, ...]:
    """MIGRATIONS with the (validated) table name filled in."""
    validate_table_name(table)
    return tuple(
        Migration(m.version, m.name, tuple(s.format(table=table) for s in m.statements))
        for m in MIGRATIONS
    )
'''


def head(package: Package, doc: Sequence[str], imports: Imports) -> list[str]:
    """Header comment, module docstring and imports: the first block of every module."""
    lines = [HEADER, f"# sqlc {package.sqlc_version}", *docstring(doc, "")]
    import_lines = imports.lines()
    if import_lines:
        lines += ["", *import_lines]
    return lines


def table_module(package: Package, limit: TableNameLimit) -> str:
    imports = Imports()
    imports.add(Import("re"))
    doc = ["The table name that fills the `{table}` placeholder of every SQL text, and its check."]
    constants = [
        f"DEFAULT_TABLE = {string_literal(package.table)}",
        "# The longest name the schema and queries derive from the table name (found by codegen),",
        "# and so the longest table name for which every derived name fits PostgreSQL's",
        f"# {IDENTIFIER_MAX_BYTES}-byte identifier limit (longer names are silently truncated).",
        *string_assignment("_LONGEST_DERIVED_NAME", limit.longest_name),
        f"TABLE_NAME_MAX_LENGTH = {limit.max_length}",
        '_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")',
        "# The SQL pastes the table name unquoted: these words (any case) would break it in one",
        "# dialect or the other (see codegen/table_name.py).",
        *string_assignment("_RESERVED_TEXT", " ".join(sorted(RESERVED_WORDS))),
        "_RESERVED_WORDS = frozenset(_RESERVED_TEXT.split())",
        *string_assignment("_RESERVED_RULE", RESERVED_RULE),
    ]
    function = _VALIDATE_TABLE_NAME.splitlines()
    return source([head(package, doc, imports), constants, function], "_table.py")


def models_module(package: Package) -> str:
    rows = [*package.table_rows, *package.query_rows]
    imports = Imports()
    imports.add_from("dataclasses", "dataclass")
    for row in rows:
        for field in row.fields:
            imports.add(*field.type.imports)
    uses_json = uses_json_value(package)
    if uses_json:
        imports.add_from("typing", "TypeAlias")
    title = DIALECT_TITLES[package.dialect]
    doc = [f"{title} row types: one per table, and one per query whose columns are not a table's."]
    blocks = [head(package, doc, imports)]
    if uses_json:
        blocks.append(JSON_VALUE)
    blocks += [_row_class(row) for row in rows]
    return source(blocks, "models.py")


def uses_json_value(package: Package) -> bool:
    fields = [f.type for row in (*package.table_rows, *package.query_rows) for f in row.fields]
    args = [arg.type for plan in package.queries for arg in plan.args]
    return any(t.from_models for t in (*fields, *args))


def _row_class(row: RowClass) -> list[str]:
    lines = ["@dataclass(frozen=True, slots=True)", f"class {row.name}:"]
    lines += docstring([row.doc], INDENT)
    lines.append("")
    lines += [f"{INDENT}{field.name}: {field.annotation}" for field in row.fields]
    return lines


def migrations_module(package: Package, migrations: Sequence[MigrationFile]) -> str:
    imports = Imports()
    imports.add_from("dataclasses", "dataclass")
    imports.add_from("._table", "validate_table_name")
    sources = ", ".join(package.schema_paths)
    doc = [
        f"{DIALECT_TITLES[package.dialect]} schema migrations, generated from {sources}.",
        "",
        "Each file `NNNN_name.sql` is one migration, applied in version order and recorded.",
        "Version 0 is the bootstrap: it runs on every migrate, so it must be idempotent.",
        "Statements are templates in which `{table}` stands for the table name (other braces",
        "are doubled); `migrations_for_table()` fills them in.",
    ]
    dataclass_block = _MIGRATION_CLASS.splitlines()
    entries: list[str] = ["MIGRATIONS: tuple[Migration, ...] = ("]
    for migration in migrations:
        entries += [
            f"{INDENT}Migration(",
            f"{INDENT * 2}version={migration.version},",
            f"{INDENT * 2}name={string_literal(migration.name)},",
        ]
        statements = migration.statements
        entries += string_tuple(INDENT * 2, "statements=(", statements, "),")
        entries.append(f"{INDENT}),")
    entries.append(")")
    if not migrations:
        entries = ["MIGRATIONS: tuple[Migration, ...] = ()"]
    function = _MIGRATIONS_FOR_TABLE.splitlines()
    blocks = [head(package, doc, imports), dataclass_block, entries, function]
    return source(blocks, "migrations.py")


def init_module(package: Package, query_classes: Sequence[str]) -> str:
    imports = Imports()
    imports.add_from("._table", "DEFAULT_TABLE", "validate_table_name")
    imports.add_from(".migrations", "MIGRATIONS", "Migration", "migrations_for_table")
    imports.add_from(".queries", *query_classes)
    title = DIALECT_TITLES[package.dialect]
    doc = [
        f"Generated {title} access ({package.target}); edit the SQL and regenerate instead.",
        "",
        f"Queries: {', '.join(package.query_paths)}. Schema: {', '.join(package.schema_paths)}.",
        "Row types are in the `models` module.",
    ]
    names = ["DEFAULT_TABLE", "MIGRATIONS", *query_classes, "Migration"]
    names += ["migrations_for_table", "validate_table_name"]
    names.sort(key=_all_key)
    all_block = bracketed("", "__all__ = [", [string_literal(n) for n in names], "]")
    return source([head(package, doc, imports), all_block], "__init__.py")


def _all_key(name: str) -> tuple[int, str]:
    # RUF022's "isort-style" order: SCREAMING_CASE, then CamelCase, then the rest.
    if name.isupper():
        return (0, name)
    return (1, name) if name[0].isupper() else (2, name)


def sql_constant(plan: QueryPlan, text: str | Sequence[str]) -> list[str]:
    """The SQL template of one query as a module constant, under a comment naming it."""
    comment = f"# {plan.name} {plan.cmd} ({plan.filename})"
    if isinstance(text, str):
        return [comment, *string_assignment(plan.constant, text)]
    return [comment, *string_tuple("", f"{plan.constant} = (", text, ")")]


_TEXTS_CLASS = '''\
class _Texts:
    """The table name, and each SQL text with it filled in.

    A text is filled once per query and kept: byte-identical texts keep the driver's statement
    cache effective.
    """

    def __init__(self, table: str = DEFAULT_TABLE) -> None:
        self.table = validate_table_name(table)
        self._texts: dict[str, str] = {}

    def _sql(self, template: str) -> str:
        text = self._texts.get(template)
        if text is None:
            text = self._texts[template] = template.format(table=self.table)
        return text
'''


def texts_class() -> list[str]:
    """The base of the query classes: the table name and the filled-in SQL texts."""
    return _TEXTS_CLASS.splitlines()


def result_imports(plan: QueryPlan, imports: Imports) -> None:
    """Import what the return annotation of ``plan`` names."""
    if plan.row is not None:
        imports.add_from(".models", plan.row.name)
    if plan.value is not None:
        imports.add(*plan.value.type.imports)
        if plan.value.type.from_models:
            imports.add_from(".models", plan.value.type.annotation)


def return_annotation(plan: QueryPlan) -> str:
    if plan.cmd in (":one", ":many"):
        if plan.value is not None:
            result = plan.value.annotation
        else:
            assert plan.row is not None
            result = plan.row.name
        if plan.cmd == ":many":
            return f"list[{result}]"
        return result if result.endswith("| None") else f"{result} | None"
    return "int" if plan.cmd == ":execrows" else "None"


def _value(field: Field, value: str, *, convert_bools: bool) -> str:
    if convert_bools and field.type.to_bool:
        # SQLite has no boolean storage class: a BOOLEAN column holds 0 or 1.
        return f"None if {value} is None else bool({value})" if field.nullable else f"bool({value})"
    return value


def fetch_lines(plan: QueryPlan, pad: str, await_: str, *, convert_bools: bool) -> list[str]:
    """The end of a method body: fetch the rows of a :one/:many and return them converted."""
    lines: list[str] = []
    if plan.cmd == ":one":
        lines.append(f"{pad}{INDENT}row = {await_}cur.fetchone()")
        lines += [f"{pad}if row is None:", f"{pad}{INDENT}return None"]
        if plan.value is not None:
            value = _value(plan.value, "row[0]", convert_bools=convert_bools)
            if value == "row[0]":  # Any: give it the column's type, as a converter would
                lines.append(f"{pad}value: {plan.value.annotation} = row[0]")
                value = "value"
            lines.append(f"{pad}return {value}")
        else:
            assert plan.row is not None
            lines += return_call(pad, converter_name(plan.row), "row")
    elif plan.cmd == ":many":
        lines.append(f"{pad}{INDENT}rows = {await_}cur.fetchall()")
        if plan.value is not None:
            element = _value(plan.value, "row[0]", convert_bools=convert_bools)
        else:
            assert plan.row is not None
            element = f"{converter_name(plan.row)}(row)"
        lines += return_list_comprehension(pad, element, "for row in rows")
    elif plan.cmd == ":execrows":
        lines.append(f"{pad}{INDENT}return cur.rowcount")
    return lines


def converter_name(row: RowClass) -> str:
    return f"_as_{snake_case(row.name)}"


def converter(row: RowClass, *, convert_bools: bool) -> list[str]:
    """A function building ``row`` from a driver's positional tuple."""
    signature = bracketed(
        "", f"def {converter_name(row)}(", ["row: tuple[Any, ...]"], f") -> {row.name}:"
    )
    values = []
    for index, field in enumerate(row.fields):
        value = f"row[{index}]"
        if convert_bools and field.type.to_bool:
            # SQLite has no boolean storage class: a BOOLEAN column holds 0 or 1.
            value = (
                f"None if {value} is None else bool({value})"
                if field.nullable
                else f"bool({value})"
            )
        values.append(f"{field.name}={value}")
    body = [f"{INDENT}return {row.name}(", *(f"{INDENT * 2}{v}," for v in values), f"{INDENT})"]
    return [*signature, *body]
