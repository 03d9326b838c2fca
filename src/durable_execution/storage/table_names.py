"""The executions table's default name and the check every configured table name passes.

Both dialects' generated packages compute the same rule; the SQLite one's is used because it
imports no database driver. Code outside ``storage/`` takes them from here, never from
``generated/``.
"""

from durable_execution.generated.sqlite import DEFAULT_TABLE, validate_table_name

__all__ = ["DEFAULT_TABLE", "validate_table_name"]
