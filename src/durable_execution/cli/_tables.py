"""Finding the executions tables of a database, for commands run without ``--table``.

``make demo`` writes to its own table (``durable_demo``), so a newcomer's next command,
``durable-execution list``, would look at the empty default table. When ``--table`` was not given,
``list`` and ``stats`` use the only executions table there is, or say which ``--table`` to use.

An executions table is recognised by its migrations table (``<table>_migrations``, which every
migrated table has), in the SQLite file or in the PostgreSQL connection's current schema. Rows
are only counted up to a cap, and only when the default table turned out missing or empty, so
that the check costs next to nothing on a real, large table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import Final

import click

from durable_execution.cli._common import CliError, Target
from durable_execution.storage.table_names import validate_table_name
from durable_execution.storage.url import PostgresUrl, SqliteUrl, parse_storage_url

_MIGRATIONS_SUFFIX: Final = "_migrations"
ROW_COUNT_CAP: Final = 10_000

# One query on the database: SQL text (with %s or ? placeholders per dialect), parameters.
_Query = Callable[[str, tuple[object, ...]], list[tuple[object, ...]]]


@dataclass(frozen=True, slots=True)
class TableChoice:
    """The target to read, and a note saying why it is not the one asked for (if so)."""

    target: Target
    note: str | None = None


@contextmanager
def _sqlite_query(path: str) -> Iterator[tuple[_Query, str]]:
    uri = f"{path}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=5)) as connection:

        def query(text: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
            return [tuple(row) for row in connection.execute(text, params)]

        yield query, "SELECT name FROM sqlite_master WHERE type = 'table'"


@contextmanager
def _postgres_query(conninfo: str) -> Iterator[tuple[_Query, str]]:
    import psycopg

    with psycopg.connect(conninfo, connect_timeout=5, autocommit=True) as connection:

        def query(text: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
            return [tuple(row) for row in connection.execute(text.replace("?", "%s"), params)]

        yield (
            query,
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema()",
        )


def _rows(query: _Query, name: str, cap: int) -> int:
    # The name is a validated identifier (see executions_tables), so quoting it is enough.
    counted = f'SELECT count(*) FROM (SELECT 1 FROM "{name}" LIMIT ?) AS capped'
    [(count,)] = query(counted, (cap,))
    assert isinstance(count, int)
    return count


def executions_tables(target: Target) -> dict[str, int] | None:
    """Row counts (of the default table: 0 or 1; of others: up to the cap) of the executions
    tables of ``target``'s database, when its own table is missing or empty; else None."""
    parsed = parse_storage_url(target.url)
    if isinstance(parsed, SqliteUrl):
        if not parsed.path.exists():
            return None
        connection = _sqlite_query(parsed.path.resolve().as_uri())
    elif isinstance(parsed, PostgresUrl):
        connection = _postgres_query(parsed.conninfo)
    else:
        return None
    with connection as (query, catalog):
        names = {str(row[0]) for row in query(catalog, ())}
        tables: list[str] = []
        for name in sorted(names):
            if name + _MIGRATIONS_SUFFIX not in names:
                continue
            try:
                tables.append(validate_table_name(name))
            except ValueError:
                continue  # never interpolate a name the library would refuse
        if target.table in tables and _rows(query, target.table, 1):
            return None
        return {
            name: 0 if name == target.table else _rows(query, name, ROW_COUNT_CAP + 1)
            for name in tables
        }


def _listing(tables: dict[str, int]) -> str:
    return ", ".join(
        f"table {name} ({'more than ' + str(ROW_COUNT_CAP) if count > ROW_COUNT_CAP else count}"
        " rows)"
        for name, count in tables.items()
    )


def choose_table(target: Target) -> TableChoice:
    """``target`` itself, unless ``--table`` was left to its default and that table is missing
    or empty: then the only other executions table (if it is missing), or a note or an error
    naming the candidates."""
    context = click.get_current_context(silent=True)
    if context is None or context.get_parameter_source("table") not in (
        click.core.ParameterSource.DEFAULT,
        None,
    ):
        return TableChoice(target)
    try:
        tables = executions_tables(target)
    except Exception:
        # Only a hint: the command itself reports what is wrong with the database, better.
        return TableChoice(target)
    if tables is None:
        return TableChoice(target)
    others = {name: count for name, count in tables.items() if name != target.table and count}
    if not others:
        return TableChoice(target)
    if target.table not in tables and len(others) == 1:
        [name] = others
        chosen = Target(target.url, name)
        return TableChoice(
            chosen,
            f"Table {target.table} does not exist here; showing table {name}, the only"
            " executions table in this database (choose one with --table).",
        )
    first = next(iter(others))
    hint = f"this database has {_listing(others)}: try --table {first}"
    if target.table not in tables:
        raise CliError(f"table {target.table} does not exist in {target.shown}; {hint}")
    return TableChoice(target, f"No executions in table {target.table}; {hint}")


def chosen_target(target: Target) -> Target:
    """:func:`choose_table`'s target, its note (if any) printed on stderr so that ``--json``
    output stays one document."""
    choice = choose_table(target)
    if choice.note:
        click.echo(choice.note, err=True)
    return choice.target
