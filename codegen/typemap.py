"""Python types for the SQL type names sqlc reports, per dialect.

sqlc does not normalise names: PostgreSQL ``int8`` arrives as ``{schema: pg_catalog, name:
int8}``, as ``pg_catalog.int8`` or as ``bigint``; SQLite passes the declared name through
(``INTEGER``, ``JSON``, a lowercase ``boolean`` from a CAST). Unknown names and sqlc's ``any``
are refused rather than typed ``Any``.
"""

from __future__ import annotations

from dataclasses import dataclass

from codegen.request import Identifier, SqlEnum


class UnsupportedType(Exception):
    """The SQL type has no precise Python type here; the caller adds which query and column."""


@dataclass(frozen=True, slots=True, order=True)
class Import:
    module: str
    name: str = ""  # "" means ``import module``; else ``from module import name``


@dataclass(frozen=True, slots=True)
class PyType:
    annotation: str  # the type of one value, e.g. "datetime.datetime"
    imports: tuple[Import, ...] = ()
    json_adapter: str = ""  # psycopg: "Json" or "Jsonb" wraps a parameter of this type
    from_models: bool = False  # the annotation is defined in the generated models module
    to_bool: bool = False  # SQLite: results come back as 0/1 and are converted with bool()
    includes_none: bool = False  # None is a value of the type itself (JSON null), not SQL NULL


_INT = PyType("int")
_FLOAT = PyType("float")
_STR = PyType("str")
_BOOL = PyType("bool")
_BYTES = PyType("bytes")
_DATETIME = PyType("datetime.datetime", (Import("datetime"),))

_POSTGRESQL: dict[str, PyType] = {
    **dict.fromkeys(["int2", "int4", "int8", "smallint", "integer", "int", "bigint"], _INT),
    **dict.fromkeys(["serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"], _INT),
    **dict.fromkeys(["float4", "float8", "real", "double precision"], _FLOAT),
    **dict.fromkeys(["numeric", "decimal"], PyType("Decimal", (Import("decimal", "Decimal"),))),
    **dict.fromkeys(["bool", "boolean"], _BOOL),
    **dict.fromkeys(
        ["text", "varchar", "character varying", "bpchar", "char", "character", "citext", "name"],
        _STR,
    ),
    "bytea": _BYTES,
    "uuid": PyType("UUID", (Import("uuid", "UUID"),)),
    **dict.fromkeys(["timestamptz", "timestamp with time zone", "timestamp"], _DATETIME),
    "date": PyType("datetime.date", (Import("datetime"),)),
    **dict.fromkeys(
        ["time", "time without time zone"], PyType("datetime.time", (Import("datetime"),))
    ),
    "interval": PyType("datetime.timedelta", (Import("datetime"),)),
    "json": PyType("JsonValue", json_adapter="Json", from_models=True, includes_none=True),
    "jsonb": PyType("JsonValue", json_adapter="Jsonb", from_models=True, includes_none=True),
}


def postgresql_type(type_: Identifier, enums: tuple[SqlEnum, ...]) -> PyType:
    name = type_.name.lower()
    name = name.removeprefix("pg_catalog.")
    if name in _POSTGRESQL:
        return _POSTGRESQL[name]
    if any(enum.name == type_.name for enum in enums):
        return _STR  # psycopg returns enum labels as str
    if name == "any":
        raise UnsupportedType(
            "sqlc could not infer its type (`any`); add a cast, e.g. `(expr)::text` or `@x::int8`"
        )
    shown = f"{type_.schema}.{type_.name}" if type_.schema else type_.name
    raise UnsupportedType(f"PostgreSQL type {shown!r} has no Python mapping in codegen/typemap.py")


_SQLITE_EXACT: dict[str, PyType] = {
    "boolean": PyType("bool", to_bool=True),
    "bool": PyType("bool", to_bool=True),
    "json": _STR,  # JSON is stored as TEXT; decoding is the caller's business
    "jsonb": _STR,
}


def sqlite_type(type_: Identifier) -> PyType:
    """The declared name's SQLite type affinity (https://sqlite.org/datatype3.html §3.1)."""
    name = type_.name.lower()
    if name in _SQLITE_EXACT:
        return _SQLITE_EXACT[name]
    if name in ("", "any"):
        raise UnsupportedType(
            "sqlc could not infer its type (`any`); add a cast, e.g. CAST(@x AS TEXT)"
        )
    if "int" in name:
        return _INT
    if "char" in name or "clob" in name or "text" in name:
        return _STR
    if "blob" in name:
        return _BYTES
    if "real" in name or "floa" in name or "doub" in name:
        return _FLOAT
    # NUMERIC affinity (NUMERIC, DECIMAL, DATETIME, …): SQLite stores an int or a float.
    return PyType("int | float")
