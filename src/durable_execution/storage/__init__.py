"""The storage contract (see :mod:`durable_execution.storage.types`) and the bundled backends."""

from durable_execution.storage.errors import DuplicateExecutionIdError, StorageError
from durable_execution.storage.memory import InMemoryStorage, InMemoryStorageTx
from durable_execution.storage.types import (
    DurableStorage,
    DurableStorageTx,
    TaskExecutionRecord,
    TaskExecutionUpdate,
    TaskExecutionWhere,
    WhereByExecutionIds,
    WhereByStartAtLessThan,
    WhereByStatuses,
)

__all__ = [
    "DuplicateExecutionIdError",
    "DurableStorage",
    "DurableStorageTx",
    "InMemoryStorage",
    "InMemoryStorageTx",
    "StorageError",
    "TaskExecutionRecord",
    "TaskExecutionUpdate",
    "TaskExecutionWhere",
    "WhereByExecutionIds",
    "WhereByStartAtLessThan",
    "WhereByStatuses",
]
