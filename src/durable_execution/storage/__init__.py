"""The storage contract (see :mod:`durable_execution.storage.types`) and the bundled backends.

The PostgreSQL backend is imported on first use (``storage.PostgresDurableStorage``), because its
driver is an optional extra: SQLite-only users can import everything else without psycopg.
"""

from typing import TYPE_CHECKING

from durable_execution.storage._sqlite_session import SqliteSynchronous
from durable_execution.storage.errors import (
    DuplicateExecutionIdError,
    MalformedRowError,
    SchemaTooNewError,
    StorageClosedError,
    StorageError,
)
from durable_execution.storage.memory import InMemoryStorage, InMemoryStorageTx
from durable_execution.storage.open import open_storage
from durable_execution.storage.sqlite import SQLiteDurableStorage, SQLiteStorageTx
from durable_execution.storage.types import (
    DurableStorage,
    DurableStorageTx,
    InspectableSchedulesStorage,
    InspectableStorage,
    ScheduleListing,
    ScheduleRecord,
    ScheduleTickAdvance,
    TaskExecutionCancel,
    TaskExecutionRecord,
    TaskExecutionUpdate,
    WhereByExecutionIds,
)

if TYPE_CHECKING:
    from durable_execution.storage.postgres import PostgresDurableStorage, PostgresStorageTx

_LAZY_POSTGRES = frozenset({"PostgresDurableStorage", "PostgresStorageTx"})


def __getattr__(name: str) -> object:
    if name in _LAZY_POSTGRES:
        from durable_execution.storage import postgres

        return getattr(postgres, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DuplicateExecutionIdError",
    "DurableStorage",
    "DurableStorageTx",
    "InMemoryStorage",
    "InMemoryStorageTx",
    "InspectableSchedulesStorage",
    "InspectableStorage",
    "MalformedRowError",
    "PostgresDurableStorage",
    "PostgresStorageTx",
    "SQLiteDurableStorage",
    "SQLiteStorageTx",
    "ScheduleListing",
    "ScheduleRecord",
    "ScheduleTickAdvance",
    "SchemaTooNewError",
    "SqliteSynchronous",
    "StorageClosedError",
    "StorageError",
    "TaskExecutionCancel",
    "TaskExecutionRecord",
    "TaskExecutionUpdate",
    "WhereByExecutionIds",
    "open_storage",
]
