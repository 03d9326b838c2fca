"""Errors a storage backend raises that the executor and users may want to tell apart."""

from __future__ import annotations


class StorageError(Exception):
    """Base class of errors raised by a storage backend."""


class StorageClosedError(StorageError):
    """The storage was closed: nothing more can be read or written through it.

    Never retried: a retry cannot succeed, and a waiting handle would otherwise spin forever.
    """


class DuplicateExecutionIdError(StorageError):
    """An insert used an ``execution_id`` that is already stored; nothing was inserted."""

    def __init__(self, execution_ids: list[str]) -> None:
        self.execution_ids = execution_ids
        super().__init__(f"Execution ids already exist: {', '.join(execution_ids)}")


class MalformedRowError(StorageError):
    """A stored row cannot be turned back into a record (bad JSON, unknown status, …).

    Names the execution and the column so that an operator can find and repair the row, and so
    that callers can set that one row aside instead of failing every read that touches it.
    """

    def __init__(self, execution_id: str, column: str, problem: str) -> None:
        self.execution_id = execution_id
        self.column = column
        self.problem = problem
        super().__init__(f"Stored execution {execution_id} has a malformed {column}: {problem}")


class SchemaTooNewError(StorageError):
    """The database records a schema version this code does not know: it was upgraded by a newer
    release. Running against it could corrupt data, so the storage refuses."""

    def __init__(self, database_version: int, code_version: int) -> None:
        self.database_version = database_version
        self.code_version = code_version
        super().__init__(
            f"schema version {database_version} is newer than this code supports "
            f"({code_version}); upgrade durable-execution"
        )


class SQLiteBusyError(StorageError):
    """Another connection kept the SQLite database locked for longer than we were willing to wait.

    Transient: the transaction did not happen and can be retried.
    """


class SQLiteFullError(StorageError):
    """SQLite could not write: the disk holding the database (or its WAL) is full, or the
    database reached its ``max_page_count`` (``SQLITE_FULL``).

    Transient: the transaction was rolled back and succeeds again once space is freed; the
    executor retries result writes, stops attempts whose leases it cannot renew meanwhile, and
    makes them ready again once it can write (see ``_leases``).
    """
