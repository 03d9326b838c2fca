"""PostgreSQL's errors as the storage reports them (shared by the async and sync storages)."""

from __future__ import annotations

import re
from typing import Final

from psycopg import errors as pg_errors

from durable_execution.storage.errors import StorageError

# PostgreSQL's detail line of a unique violation (lc_messages=C/English); when it does not
# match, every id of the batch is reported instead.
_DUPLICATE_KEY: Final = re.compile(r"Key \(execution_id\)=\((?P<id>.*)\) already exists")


def duplicate_ids(error: pg_errors.UniqueViolation, batch_ids: list[str]) -> list[str]:
    """The execution id the violation names if it is one of the batch's, else the whole batch."""
    match = _DUPLICATE_KEY.search(error.diag.message_detail or "")
    if match is not None and match.group("id") in batch_ids:
        return [match.group("id")]
    return batch_ids


def missing_table_error(table_name: str, error: pg_errors.UndefinedTable) -> StorageError:
    return StorageError(
        f"Table {table_name} does not exist in the connection's schema: create it "
        f"with migrate() (open_storage does unless migrate=False): {error}"
    )
