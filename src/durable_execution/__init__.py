"""Durable tasks for Python: executions stored in a database that survive crashes, retry, time
out, can be cancelled and fan out into children. Everything a user needs is importable from here.
"""

from typing import TYPE_CHECKING

from durable_execution.builders import InputValidatedTaskBuilder
from durable_execution.errors import (
    DurableExecutionCancelledError,
    DurableExecutionError,
    DurableExecutionNotFoundError,
    DurableExecutionTimedOutError,
)
from durable_execution.executions import (
    ActiveTaskExecution,
    CancelledExecution,
    ChildrenTasksFailedExecution,
    CompletedExecution,
    FailedExecution,
    FinalizeTaskFailedExecution,
    FinishedTaskExecution,
    ReadyExecution,
    RunningExecution,
    TaskExecution,
    TimedOutExecution,
    WaitingForChildrenTasksExecution,
    WaitingForFinalizeTaskExecution,
)
from durable_execution.executor import DurableExecutor, TaskDecorator
from durable_execution.handle import TaskHandle, cancel_execution
from durable_execution.logs import ExecutionLogFilter, JsonLogFormatter
from durable_execution.model import (
    ChildTaskError,
    ErrorType,
    ExecutionErrorInfo,
    ParentTaskRef,
    RetryOptions,
    TaskExecutionStatus,
    TaskRef,
)
from durable_execution.payloads import ChildTaskOutput, FinalizeTaskInput, ParentTaskOutput
from durable_execution.rerun import rerun_execution
from durable_execution.retention import PruneResult, prune_executions
from durable_execution.schedules import Schedule, schedule_tick_key
from durable_execution.serializer import (
    CheckedSerializer,
    JsonSerializer,
    Serializable,
    Serializer,
)
from durable_execution.storage import (
    DuplicateExecutionIdError,
    DurableStorage,
    DurableStorageTx,
    InMemoryStorage,
    SQLiteDurableStorage,
    StorageError,
    open_storage,
)
from durable_execution.sync_client import SyncClient, SyncTaskHandle
from durable_execution.tasks import (
    AnyChildTask,
    ChildTask,
    FinalizeTask,
    ParentTaskResult,
    Task,
    TaskContext,
    TaskEnqueueOptions,
)

if TYPE_CHECKING:
    from durable_execution.storage.postgres import PostgresDurableStorage


def __getattr__(name: str) -> object:
    # Imported on first use: psycopg is an optional extra (SQLite-only users need not have it).
    if name == "PostgresDurableStorage":
        from durable_execution.storage.postgres import PostgresDurableStorage

        return PostgresDurableStorage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ActiveTaskExecution",
    "AnyChildTask",
    "CancelledExecution",
    "CheckedSerializer",
    "ChildTask",
    "ChildTaskError",
    "ChildTaskOutput",
    "ChildrenTasksFailedExecution",
    "CompletedExecution",
    "DuplicateExecutionIdError",
    "DurableExecutionCancelledError",
    "DurableExecutionError",
    "DurableExecutionNotFoundError",
    "DurableExecutionTimedOutError",
    "DurableExecutor",
    "DurableStorage",
    "DurableStorageTx",
    "ErrorType",
    "ExecutionErrorInfo",
    "ExecutionLogFilter",
    "FailedExecution",
    "FinalizeTask",
    "FinalizeTaskFailedExecution",
    "FinalizeTaskInput",
    "FinishedTaskExecution",
    "InMemoryStorage",
    "InputValidatedTaskBuilder",
    "JsonLogFormatter",
    "JsonSerializer",
    "ParentTaskOutput",
    "ParentTaskRef",
    "ParentTaskResult",
    "PostgresDurableStorage",
    "PruneResult",
    "ReadyExecution",
    "RetryOptions",
    "RunningExecution",
    "SQLiteDurableStorage",
    "Schedule",
    "Serializable",
    "Serializer",
    "StorageError",
    "SyncClient",
    "SyncTaskHandle",
    "Task",
    "TaskContext",
    "TaskDecorator",
    "TaskEnqueueOptions",
    "TaskExecution",
    "TaskExecutionStatus",
    "TaskHandle",
    "TaskRef",
    "TimedOutExecution",
    "WaitingForChildrenTasksExecution",
    "WaitingForFinalizeTaskExecution",
    "cancel_execution",
    "open_storage",
    "prune_executions",
    "rerun_execution",
    "schedule_tick_key",
]
