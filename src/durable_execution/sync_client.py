"""A synchronous client: enqueue, read, wait for and cancel executions without an event loop.

For code that has no event loop — a Django or Flask view, a script, a cron job — and must hand
work to the executors (workers) that share its database::

    with SyncClient("sqlite:///app.db") as client:
        handle = client.enqueue_task(send_email, {"to": "ada@example.com"})
        execution = handle.wait_and_get_finished_execution(timeout_ms=10_000)

``send_email`` is a :class:`~durable_execution.Task` registered on any executor (one that is
never started will do: the client only needs the task's id, defaults and input validation);
the workers that run it register the same task. The client stores executions exactly as
``DurableExecutor.enqueue_task`` does (the same options, validation, serializer checks and
row), through the generated *synchronous* queries: stdlib ``sqlite3`` on SQLite, a psycopg
``ConnectionPool`` on PostgreSQL, where workers are woken at once by the same ``pg_notify`` the
async storage sends.

One client is meant to be shared by every thread of a process (a web server's worker threads):
on SQLite threads borrow connections from a small free list and this process's writes queue on
a lock; the PostgreSQL pool hands each transaction a connection of its own. Connections do not
survive a fork: a pre-forking server creates the client in each worker process.

Waiting for an execution polls the database, starting at 5 ms and doubling up to
``polling_interval_ms`` (default 1000 ms): the client hears no wake-ups from the executors.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Generic, Self, TypeVar, cast, overload

from durable_execution._cancellation import write_cancellation_sync
from durable_execution._inserts import store_new_sync
from durable_execution._options import (
    check_wait_ms,
    options_per_input,
    resolve_enqueue_options,
    validate_max_serialized_size_bytes,
)
from durable_execution._records import enqueued_record
from durable_execution._registry import validated_input_sync
from durable_execution._sync_open import open_sync_storage
from durable_execution._telemetry import enqueue_span, enqueued
from durable_execution._transactions import is_transient
from durable_execution.errors import DurableExecutionNotFoundError, DurableExecutionTimedOutError
from durable_execution.executions import (
    FinishedTaskExecution,
    TaskExecution,
    execution_from_record,
)
from durable_execution.handle import DEFAULT_POLLING_INTERVAL_MS
from durable_execution.ids import check_execution_id
from durable_execution.model import FINISHED_STATUSES
from durable_execution.serializer import CheckedSerializer, JsonSerializer, Serializer
from durable_execution.storage.errors import StorageClosedError
from durable_execution.storage.masking import mask_password
from durable_execution.storage.table_names import DEFAULT_TABLE, validate_table_name
from durable_execution.storage.types import TaskExecutionRecord
from durable_execution.tasks import Task, TaskDefinition, TaskEnqueueOptions, definition_of

if TYPE_CHECKING:
    from durable_execution.storage._sqlite_session import SqliteSynchronous
    from durable_execution.storage.sync_types import SyncStorage

__all__ = ["SyncClient", "SyncTaskHandle"]

InputT = TypeVar("InputT")
OutputT = TypeVar("OutputT")
OutputT_co = TypeVar("OutputT_co", covariant=True)

DEFAULT_MAX_SERIALIZED_SIZE_BYTES: Final = 1_048_576  # the executor's default
# The first pause of a wait; each next one doubles, up to the polling interval.
FIRST_POLL_S: Final = 0.005


class SyncTaskHandle(Generic[OutputT_co]):
    """:class:`~durable_execution.TaskHandle`'s synchronous twin: one execution, read, waited
    for or cancelled through the :class:`SyncClient` that created it (and only while it is
    open)."""

    __slots__ = ("_client", "_execution_id", "_task_id")

    def __init__(self, client: SyncClient, task_id: str, execution_id: str) -> None:
        self._client = client
        self._task_id = task_id
        self._execution_id = execution_id

    @property
    def task_id(self) -> str:
        return self._task_id

    @property
    def execution_id(self) -> str:
        return self._execution_id

    def get_execution(self) -> TaskExecution[OutputT_co]:
        # The output was produced by this handle's task, whose output type is OutputT.
        return cast("TaskExecution[OutputT_co]", self._client.get_execution(self._execution_id))

    def wait_and_get_finished_execution(
        self, *, polling_interval_ms: int | None = None, timeout_ms: int | None = None
    ) -> FinishedTaskExecution[OutputT_co]:
        """The execution once it finished: see
        :meth:`SyncClient.wait_and_get_finished_execution`."""
        finished = self._client.wait_and_get_finished_execution(
            self._execution_id, polling_interval_ms=polling_interval_ms, timeout_ms=timeout_ms
        )
        return cast("FinishedTaskExecution[OutputT_co]", finished)

    def cancel(self) -> None:
        """Cancel the execution if it is still active; harmless if it already finished or is
        gone (pruned), as a ``TaskHandle``'s is."""
        with contextlib.suppress(DurableExecutionNotFoundError):
            self._client.cancel(self._execution_id)

    def __repr__(self) -> str:
        return f"SyncTaskHandle(task_id={self._task_id!r}, execution_id={self._execution_id!r})"


class SyncClient:
    """Enqueue and follow executions from synchronous code; a context manager (see the module
    doc). Opening it connects, and creates or upgrades the schema unless ``migrate=False``
    (exactly as ``open_storage`` does; see :mod:`._sync_open`).

    ``url`` is a ``sqlite:///…`` or ``postgresql://…`` URL (``memory://`` is refused: nothing
    outside the executor's own process can reach an in-memory storage). ``table_name``,
    ``busy_timeout_ms`` and ``sqlite_synchronous`` (SQLite), ``pool_min_size`` and
    ``pool_max_size`` (PostgreSQL; default 1 and 10) mean what they mean for ``open_storage``.
    ``serializer`` and ``max_serialized_size_bytes`` must match the executors' (defaults: JSON,
    1 MiB): inputs are serialized here and read back there.
    """

    def __init__(
        self,
        url: str,
        *,
        table_name: str = DEFAULT_TABLE,
        migrate: bool = True,
        serializer: Serializer | None = None,
        max_serialized_size_bytes: int = DEFAULT_MAX_SERIALIZED_SIZE_BYTES,
        logger: logging.Logger | None = None,
        busy_timeout_ms: int | None = None,
        sqlite_synchronous: SqliteSynchronous | None = None,
        pool_min_size: int | None = None,
        pool_max_size: int | None = None,
    ) -> None:
        validate_table_name(table_name)
        self._serializer = CheckedSerializer(
            serializer or JsonSerializer(),
            validate_max_serialized_size_bytes(max_serialized_size_bytes),
        )
        self._logger = logger or logging.getLogger("durable_execution")
        self._closed = False
        self._storage: SyncStorage = open_sync_storage(
            url,
            table_name=table_name,
            migrate=migrate,
            busy_timeout_ms=busy_timeout_ms,
            sqlite_synchronous=sqlite_synchronous,
            pool_min_size=pool_min_size,
            pool_max_size=pool_max_size,
        )
        self._display = f"{mask_password(url)!r} table={table_name!r}"  # never the password

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<SyncClient {self._display}{state}>"

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connections (idempotent); on PostgreSQL, send the last wake-up first.
        Call it once no thread uses the client any more."""
        if not self._closed:
            self._closed = True
            self._storage.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _open_storage(self) -> SyncStorage:
        if self._closed:
            raise StorageClosedError("The SyncClient is closed")
        return self._storage

    # -- enqueueing --------------------------------------------------------------------------

    @overload
    def enqueue_task(
        self,
        task: Task[None, OutputT],
        input: None = None,
        options: TaskEnqueueOptions | None = None,
    ) -> SyncTaskHandle[OutputT]: ...

    @overload
    def enqueue_task(
        self,
        task: Task[InputT, OutputT],
        input: InputT,
        options: TaskEnqueueOptions | None = None,
    ) -> SyncTaskHandle[OutputT]: ...

    def enqueue_task(
        self,
        task: Task[Any, Any],
        input: object = None,
        options: TaskEnqueueOptions | None = None,
    ) -> SyncTaskHandle[Any]:
        """Store a new execution of ``task``; its handle. As ``DurableExecutor.enqueue_task``:
        invalid options or input, or an input the serializer refuses, raise and store nothing;
        the execution waits for an executor to run it; with ``options.idempotency_key``, a key
        an execution of ``task`` already holds gives a handle on that execution and stores
        nothing. Commits before it returns."""
        return self.enqueue_tasks(task, [input], options)[0]

    def enqueue_tasks(
        self,
        task: Task[InputT, OutputT],
        inputs: Iterable[InputT],
        options: TaskEnqueueOptions | Sequence[TaskEnqueueOptions | None] | None = None,
    ) -> list[SyncTaskHandle[OutputT]]:
        """One new execution of ``task`` per input, all in one transaction (all or nothing);
        their handles, in the order of ``inputs``. As ``DurableExecutor.enqueue_tasks``:
        ``options`` is one for all inputs or one per input (each input's own idempotency key),
        and an input whose key is held gets a handle on the holder."""
        storage = self._open_storage()
        definition = _definition(task)
        values = list(inputs)
        per_input = options_per_input(definition.id, len(values), options)
        with enqueue_span(definition.id):  # current while the records are built: they store it
            records = [
                enqueued_record(
                    definition,
                    resolve_enqueue_options(definition, value_options),
                    validated_input_sync(definition, value),
                    self._serializer,
                )
                for value, value_options in zip(values, per_input, strict=True)
            ]
            if len(records) == 1:
                enqueued(execution_id=records[0].execution_id)
            else:
                enqueued(count=len(records))
            execution_ids = store_new_sync(storage, self._logger, records) if records else []
        self._logger.debug(
            "Enqueued %d executions of %s (%d existing returned for their idempotency keys)",
            len(records),
            definition.id,
            sum(r.execution_id != e for r, e in zip(records, execution_ids, strict=True)),
        )
        return [SyncTaskHandle(self, definition.id, execution_id) for execution_id in execution_ids]

    # -- executions --------------------------------------------------------------------------

    def get_task_handle(
        self, task: Task[Any, OutputT], execution_id: str
    ) -> SyncTaskHandle[OutputT]:
        """A handle on an existing execution of ``task``; :class:`DurableExecutionNotFoundError`
        if there is none, or it belongs to another task."""
        record = self._read(execution_id)
        if record.task_id != task.id:
            raise DurableExecutionNotFoundError(
                f"Execution {execution_id} belongs to task {record.task_id}, not {task.id}"
            )
        return SyncTaskHandle(self, task.id, execution_id)

    def get_execution(self, execution_id: str) -> TaskExecution[object]:
        """The execution's current state; :class:`DurableExecutionNotFoundError` if unknown.
        Its output is typed ``object``: :meth:`get_task_handle` gives it the task's type."""
        return execution_from_record(self._read(execution_id), self._serializer)

    def wait_and_get_finished_execution(
        self,
        execution_id: str,
        *,
        polling_interval_ms: int | None = None,
        timeout_ms: int | None = None,
    ) -> FinishedTaskExecution[object]:
        """The execution once it finished, polling the database (5 ms at first, doubling up to
        ``polling_interval_ms``, default 1000). :class:`DurableExecutionTimedOutError` once
        ``timeout_ms`` passed (non-positive: read once); the execution goes on. A storage that
        is briefly unreachable is logged and polled again; an unknown id raises
        :class:`DurableExecutionNotFoundError`."""
        check_wait_ms("polling_interval_ms", polling_interval_ms)
        check_wait_ms("timeout_ms", timeout_ms)
        interval_ms = (
            polling_interval_ms
            if polling_interval_ms is not None and polling_interval_ms > 0
            else DEFAULT_POLLING_INTERVAL_MS
        )
        longest_s = interval_ms / 1000
        pause_s = min(FIRST_POLL_S, longest_s)
        deadline = None if timeout_ms is None else time.monotonic() + max(timeout_ms, 0) / 1000
        while True:
            try:
                record = self._read(execution_id)
            except Exception as error:
                if not is_transient(error):  # not found, closed, a malformed row…
                    raise
                # The storage is down (say, restarting): a wait outlives that; keep polling.
                self._logger.warning(
                    "Waiting for execution %s: cannot read it yet (%r); will retry",
                    execution_id,
                    error,
                )
            else:
                if record.status in FINISHED_STATUSES:
                    finished = execution_from_record(record, self._serializer)
                    return cast("FinishedTaskExecution[object]", finished)
            left_s = None if deadline is None else deadline - time.monotonic()
            if left_s is not None and left_s <= 0:
                raise DurableExecutionTimedOutError(
                    f"Timed out waiting for execution {execution_id} to finish"
                )
            time.sleep(pause_s if left_s is None else min(pause_s, left_s))
            pause_s = min(pause_s * 2, longest_s)

    def cancel(self, execution_id: str) -> bool:
        """Cancel an active execution (the executor running it stops its attempt): ``True`` if
        this call cancelled it, ``False`` if it had already finished;
        :class:`DurableExecutionNotFoundError` if there is no such execution."""
        check_execution_id(execution_id)
        outcome = write_cancellation_sync(self._open_storage(), self._logger, execution_id)
        if outcome == "not_found":
            raise DurableExecutionNotFoundError(f"Execution {execution_id} not found")
        return outcome == "cancelled"

    def _read(self, execution_id: str) -> TaskExecutionRecord:
        check_execution_id(execution_id)
        rows = self._open_storage().read_task_executions([execution_id])
        if not rows:
            raise DurableExecutionNotFoundError(f"Execution {execution_id} not found")
        return rows[0]


def _definition(task: Task[Any, Any]) -> TaskDefinition:
    if not isinstance(task, Task):
        raise TypeError(
            f"expected a Task (what executor.task(...) returns), got {type(task).__name__}"
        )
    return definition_of(task)
