"""Finding the executions tables of a SQLite database, for commands run without ``--table``.

``make demo`` writes to its own table (``durable_demo``), so a newcomer's next command,
``durable-execution list``, would look at the empty default table. When ``--table`` was not given,
``list`` and ``stats`` use the only executions table there is, or say which ``--table`` to use.

An executions table is recognised by its migrations table (``<table>_migrations``, which every
migrated table has). Only SQLite files are searched: a PostgreSQL database is shared, and its
tables are named by whoever set it up.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass

import click

from durable_execution.cli._common import CliError, Target
from durable_execution.generated.sqlite import validate_table_name
from durable_execution.storage.url import SqliteUrl, parse_storage_url

_MIGRATIONS_SUFFIX = "_migrations"


@dataclass(frozen=True, slots=True)
class TableChoice:
    """The target to read, and a note saying why it is not the one asked for (if so)."""

    target: Target
    note: str | None = None


def executions_tables(target: Target) -> dict[str, int] | None:
    """Executions tables of ``target``'s SQLite file and their row counts; None if not SQLite."""
    parsed = parse_storage_url(target.url)
    if not isinstance(parsed, SqliteUrl) or not parsed.path.exists():
        return None
    uri = f"{parsed.path.resolve().as_uri()}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=5)) as connection:
        names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        tables: dict[str, int] = {}
        for name in sorted(names):
            if name + _MIGRATIONS_SUFFIX not in names:
                continue
            try:
                validate_table_name(name)
            except ValueError:
                continue  # never interpolate a name the library would refuse
            # The name is a validated identifier, so quoting it is enough.
            (count,) = connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()
            tables[name] = int(count)
    return tables


def _listing(tables: dict[str, int]) -> str:
    return ", ".join(f"table {name} ({count} rows)" for name, count in tables.items())


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
    tables = executions_tables(target)
    if tables is None or tables.get(target.table):
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
