"""Check, on open, that a SQLite table still has the columns and indexes its migrations made.

The migrations table says which versions ran, not that their work is still there: a column or
an index dropped by hand (or a table rebuilt by a tool) goes unnoticed until a query fails
deep inside the executor, or, for a missing index, until the claims get slow. So the storage
replays the migrations on a scratch in-memory database and compares both schemas through
sqlite-utils' introspection, refusing to start with an error that names what differs.
Extra columns, indexes and triggers a user added are accepted.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import sqlite_utils

from durable_execution.generated.sqlite import Migration
from durable_execution.storage.errors import StorageError


def _database(conn: sqlite3.Connection) -> sqlite_utils.Database:
    # Leave the connection as the storage set it up: no PRAGMA recursive_triggers, no plugin
    # hooks registering functions on it.
    return sqlite_utils.Database(conn, recursive_triggers=False, execute_plugins=False)


def _expected(
    table: str, migrations: Sequence[Migration]
) -> tuple[list[sqlite_utils.db.Column], list[sqlite_utils.db.Index]]:
    """The columns and indexes the migrations create, on a scratch in-memory database."""
    scratch = sqlite3.connect(":memory:")
    try:
        for migration in migrations:
            for statement in migration.statements:
                scratch.execute(statement)
        expected = _database(scratch).table(table)
        return expected.columns, expected.indexes
    finally:
        scratch.close()


def _column(column: sqlite_utils.db.Column) -> str:
    parts = [column.type or "(no type)"]
    if column.notnull:
        parts.append("NOT NULL")
    if column.is_pk:
        parts.append("PRIMARY KEY")
    return " ".join(parts)


def _index(index: sqlite_utils.db.Index) -> str:
    unique = "UNIQUE " if index.unique else ""
    partial = " (partial)" if index.partial else ""
    return f"{unique}({', '.join(index.columns)}){partial}"


def schema_differences(
    conn: sqlite3.Connection, table: str, migrations: Sequence[Migration], *, if_exists: bool
) -> list[str]:
    """What the table in ``conn`` lacks or has changed, compared with ``migrations``' result.

    With ``if_exists``, a missing table is no difference (the first query then says to
    migrate).
    """
    actual = _database(conn).table(table)
    if not actual.exists():
        return [] if if_exists else [f"table {table} does not exist"]
    expected_columns, expected_indexes = _expected(table, migrations)
    problems: list[str] = []
    found_columns = {column.name: column for column in actual.columns}
    for column in expected_columns:
        found = found_columns.get(column.name)
        if found is None:
            problems.append(f"column {column.name} ({_column(column)}) is missing")
        elif _column(found) != _column(column):
            problems.append(
                f"column {column.name} is {_column(found)}, the migrations made {_column(column)}"
            )
    found_indexes = {index.name: index for index in actual.indexes}
    for index in expected_indexes:
        if index.origin == "pk":
            continue  # the INTEGER PRIMARY KEY is the rowid, not an index
        found_index = found_indexes.get(index.name)
        if found_index is None:
            problems.append(f"index {index.name} {_index(index)} is missing")
        elif _index(found_index) != _index(index):
            problems.append(
                f"index {index.name} is {_index(found_index)}, the migrations made {_index(index)}"
            )
    return problems


def verify_schema(
    conn: sqlite3.Connection,
    table: str,
    migrations: Sequence[Migration],
    *,
    if_exists: bool = False,
) -> None:
    """Raise StorageError naming every difference between the table and its migrations."""
    problems = schema_differences(conn, table, migrations, if_exists=if_exists)
    if problems:
        raise StorageError(
            f"The SQLite table {table} does not match what its migrations create: "
            + "; ".join(problems)
            + ". Restore what was dropped or changed (the statements are in schema/sqlite/), "
            "or, if the table is not migrated yet, open the storage with migrate=True."
        )
