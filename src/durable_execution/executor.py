"""The durable executor: registers tasks, enqueues executions and runs the background loops.

Usage: see the README's Quickstart (``executor.task(...)``, ``async with executor:``,
``await executor.enqueue_task(task, input)``, then the handle's
``wait_and_get_finished_execution()``).

While started, loops claim ready executions (up to ``max_concurrent_task_executions`` at once),
close finished ones, recover expired leases, stop local runs cancelled elsewhere and fire
schedules (``executor.schedule``, in ``_executor_schedules``); until the last attempt finished,
this executor's leases are renewed. See ``_claims``, ``_runner``, ``_closing``, ``_leases``,
``_cancellation`` and ``_schedule_loop``, and ``_background`` for how shutdown drains them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any, Final, NoReturn, TypeVar, overload

from durable_execution._background import BackgroundLoops
from durable_execution._enqueue import Enqueuer
from durable_execution._executor_schedules import ExecutorSchedules
from durable_execution._leases import DEFAULT_EXPIRE_MS, DEFAULT_MAX_LEASE_EXPIRIES
from durable_execution._options import (
    validate_executor_options,
    validate_queues,
)
from durable_execution._registry import (
    make_definition,
    make_validator,
)
from durable_execution._runtime import ExecutorConfig, Runtime
from durable_execution._sequential import SequentialChains
from durable_execution._transactions import TransactionRunner
from durable_execution.builders import (
    InputValidatedTaskBuilder,
    PydanticModelClass,
    PydanticTypeAdapter,
    schema_codec,
)
from durable_execution.errors import DurableExecutionNotFoundError, executor_shutdown_error
from durable_execution.handle import TaskHandle, read_record
from durable_execution.ids import check_execution_id
from durable_execution.model import RetryOptions
from durable_execution.payloads import FinalizeTaskInput, ParentTaskOutput
from durable_execution.serializer import CheckedSerializer, JsonSerializer, Serializable, Serializer
from durable_execution.storage.types import DurableStorage
from durable_execution.tasks import (
    DEFAULT_QUEUE,
    FinalizeTask,
    RunParentFunction,
    Task,
    TaskContext,
    TaskDecorator,
    TaskDefinition,
    TaskEnqueueOptions,
)

InputT = TypeVar("InputT")
OutputT = TypeVar("OutputT")
RunOutputT = TypeVar("RunOutputT")
FinalOutputT = TypeVar("FinalOutputT")
ValidT = TypeVar("ValidT")
# The input and outputs of tasks registered here are stored by the serializer: bounded by what
# the default one accepts (see Serializable). A custom serializer that stores more (dataclasses…)
# needs `# type: ignore[type-var]` at registration; input_schema() tasks are not bounded.
StorableInputT = TypeVar("StorableInputT", bound=Serializable)
StorableOutputT = TypeVar("StorableOutputT", bound=Serializable)
StorableRunOutputT = TypeVar("StorableRunOutputT", bound=Serializable)
StorableValidT = TypeVar("StorableValidT", bound=Serializable)
T1 = TypeVar("T1")
T2 = TypeVar("T2")
T3 = TypeVar("T3")
T4 = TypeVar("T4")
T5 = TypeVar("T5")

DEFAULT_INTRA_BATCH_SLEEP_MS: Final = 500


class DurableExecutor(ExecutorSchedules):
    def __init__(
        self,
        storage: DurableStorage,
        *,
        serializer: Serializer | None = None,
        logger: logging.Logger | None = None,
        expire_ms: int = DEFAULT_EXPIRE_MS,
        background_process_intra_batch_sleep_ms: int = DEFAULT_INTRA_BATCH_SLEEP_MS,
        max_concurrent_task_executions: int = 1000,
        max_serialized_size_bytes: int = 1_048_576,
        max_lease_expiries: int | None = DEFAULT_MAX_LEASE_EXPIRIES,
        retention: timedelta | None = None,
        queues: Sequence[str] | None = None,
    ) -> None:
        """``expire_ms`` is a running attempt's lease, renewed by its executor (see ``_leases``):
        a crash is recovered about ``expire_ms`` later, whatever the task's timeout.
        ``background_process_intra_batch_sleep_ms`` is how long idle loops wait before looking
        for work created by other processes. Non-positive values of those two fall back to the
        defaults (as in the reference).

        ``max_lease_expiries`` bounds crash recovery: every time a running attempt's lease
        expires the row counts it (durably, ``lease_expiries``) and is run again, except that the
        expiry reaching this bound fails the execution with a non-retryable error "Task lease
        expired N times …" (its parent then sees a failed child); storage outages do not count.
        ``None`` re-runs forever, as the reference does.
        ``retention`` (default ``None``: keep everything) prunes trees finished longer ago than
        it, automatically and one executor at a time (``_retention_loop``).
        ``queues``: the queues this executor claims from; ``None`` (default) serves the default
        queue and the queues of the tasks registered here, whenever they were registered.

        Each option is checked (type and range: durations up to 2**40 ms, counts up to
        2**31 - 1; see ``_options``); a bad one raises a ``ValueError`` naming it."""
        options = validate_executor_options(
            expire_ms=expire_ms,
            background_process_intra_batch_sleep_ms=background_process_intra_batch_sleep_ms,
            max_concurrent_task_executions=max_concurrent_task_executions,
            max_serialized_size_bytes=max_serialized_size_bytes,
            max_lease_expiries=max_lease_expiries,
            retention=retention,
            default_expire_ms=DEFAULT_EXPIRE_MS,
            default_intra_batch_sleep_ms=DEFAULT_INTRA_BATCH_SLEEP_MS,
        )
        self._logger = logger or logging.getLogger("durable_execution")
        self._rt = Runtime(
            transactions=TransactionRunner(storage, self._logger),
            serializer=CheckedSerializer(
                serializer or JsonSerializer(), options.max_serialized_size_bytes
            ),
            logger=self._logger,
            config=ExecutorConfig(
                expire_ms=options.expire_ms,
                intra_batch_sleep_ms=options.intra_batch_sleep_ms,
                max_concurrent_task_executions=options.max_concurrent_task_executions,
                max_lease_expiries=options.max_lease_expiries,
                retention=options.retention,
                queues=validate_queues(queues),
            ),
        )
        self._enqueues = Enqueuer(self._rt)
        self._chains = SequentialChains(self._rt.registry, self._register)
        self._background = BackgroundLoops(self._rt)
        self._shutdown_done: asyncio.Event | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the background loops; returns once they run. Calling it again is harmless."""
        self._check_open()
        if not self._background.started:
            await self._background.start()

    async def shutdown(self) -> None:
        """Stop claiming (interrupting the loops' idle waits) and wait for the running attempts.

        Running attempts are not cancelled: they can watch ``ctx.is_shutdown_requested()``.
        A cancel from any process still stops one at its next ``await`` while this drains.
        Idempotent; concurrent calls all return once shutdown completed.
        """
        if self._shutdown_done is not None:
            await self._shutdown_done.wait()
            return
        self._shutdown_done = asyncio.Event()
        try:
            self._logger.info("Executor shutting down")
            self._rt.request_shutdown()
            await self._background.drain(before_runs=self._enqueues.wait_idle)
            self._logger.info("Executor shut down")
        finally:
            self._shutdown_done.set()

    async def __aenter__(self) -> DurableExecutor:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    def _check_open(self) -> None:
        if self._shutdown_done is not None:
            raise executor_shutdown_error()

    def _register(self, definition: TaskDefinition) -> None:
        self._check_open()
        self._rt.registry.register(definition)
        self._logger.debug("Registered task %s", definition.id)

    # -- registration ------------------------------------------------------------------------

    @overload
    def task(
        self,
        *,
        id: str,
        timeout_ms: int,
        run: Callable[[TaskContext, StorableInputT], StorableOutputT],
        retry_options: RetryOptions | None = None,
        sleep_ms_before_run: int | None = None,
        queue: str = DEFAULT_QUEUE,
        concurrency_limit: int | None = None,
    ) -> Task[StorableInputT, StorableOutputT]: ...

    @overload
    def task(
        self,
        *,
        id: str,
        timeout_ms: int,
        run: Callable[[TaskContext, StorableInputT], Awaitable[StorableOutputT]],
        retry_options: RetryOptions | None = None,
        sleep_ms_before_run: int | None = None,
        queue: str = DEFAULT_QUEUE,
        concurrency_limit: int | None = None,
    ) -> Task[StorableInputT, StorableOutputT]: ...

    @overload
    def task(
        self,
        *,
        id: str,
        timeout_ms: int,
        retry_options: RetryOptions | None = None,
        sleep_ms_before_run: int | None = None,
        queue: str = DEFAULT_QUEUE,
        concurrency_limit: int | None = None,
    ) -> TaskDecorator: ...

    def task(
        self,
        *,
        id: str,
        timeout_ms: int,
        run: Callable[[TaskContext, Any], Any] | None = None,
        retry_options: RetryOptions | None = None,
        sleep_ms_before_run: int | None = None,
        queue: str = DEFAULT_QUEUE,
        concurrency_limit: int | None = None,
    ) -> Task[Any, Any] | TaskDecorator:
        """Register a task; without ``run``, a decorator that registers the decorated function.

        ``run(ctx, input)`` may be sync (run in a worker thread) or async. Its executions go to
        ``queue``; with ``concurrency_limit=N`` at most N of them run at once per
        ``TaskEnqueueOptions.concurrency_key``, across every executor (see the README).
        """

        def register(function: Callable[[TaskContext, Any], Any]) -> Task[Any, Any]:
            definition = make_definition(
                id=id,
                timeout_ms=timeout_ms,
                run=function,
                shape="simple",
                retry_options=retry_options,
                sleep_ms_before_run=sleep_ms_before_run,
                queue=queue,
                concurrency_limit=concurrency_limit,
            )
            self._register(definition)
            return Task(definition)

        if run is None:
            self._check_open()
            return register
        return register(run)

    @overload
    def parent_task(
        self,
        *,
        id: str,
        timeout_ms: int,
        run_parent: RunParentFunction[StorableInputT, StorableRunOutputT],
        finalize_task: None = None,
        retry_options: RetryOptions | None = None,
        sleep_ms_before_run: int | None = None,
        queue: str = DEFAULT_QUEUE,
        concurrency_limit: int | None = None,
    ) -> Task[StorableInputT, ParentTaskOutput[StorableRunOutputT]]: ...

    @overload
    def parent_task(
        self,
        *,
        id: str,
        timeout_ms: int,
        run_parent: RunParentFunction[StorableInputT, StorableRunOutputT],
        finalize_task: FinalizeTask[
            FinalizeTaskInput[StorableInputT, StorableRunOutputT], FinalOutputT
        ],
        retry_options: RetryOptions | None = None,
        sleep_ms_before_run: int | None = None,
        queue: str = DEFAULT_QUEUE,
        concurrency_limit: int | None = None,
    ) -> Task[StorableInputT, FinalOutputT]: ...

    def parent_task(
        self,
        *,
        id: str,
        timeout_ms: int,
        run_parent: Callable[[TaskContext, Any], Any],
        finalize_task: FinalizeTask[Any, Any] | None = None,
        retry_options: RetryOptions | None = None,
        sleep_ms_before_run: int | None = None,
        queue: str = DEFAULT_QUEUE,
        concurrency_limit: int | None = None,
    ) -> Task[Any, Any]:
        """Register a task whose ``run_parent`` returns a :class:`ParentTaskResult`.

        Without ``finalize_task`` the output is a :class:`ParentTaskOutput` (run output plus the
        children's outputs); with one, it is the finalize task's output.
        """
        definition = make_definition(
            id=id,
            timeout_ms=timeout_ms,
            run=run_parent,
            shape="parent",
            retry_options=retry_options,
            sleep_ms_before_run=sleep_ms_before_run,
            finalize_task=finalize_task,
            queue=queue,
            concurrency_limit=concurrency_limit,
        )
        self._register(definition)
        return Task(definition)

    @overload
    def validate_input(
        self, validate: Callable[[InputT], StorableValidT]
    ) -> InputValidatedTaskBuilder[InputT, StorableValidT]: ...

    @overload
    def validate_input(
        self, validate: Callable[[InputT], Awaitable[StorableValidT]]
    ) -> InputValidatedTaskBuilder[InputT, StorableValidT]: ...

    def validate_input(self, validate: Callable[[Any], Any]) -> InputValidatedTaskBuilder[Any, Any]:
        """Tasks registered through the result validate their input with ``validate`` first."""
        self._check_open()
        return InputValidatedTaskBuilder(self._register, make_validator(validate))

    @overload
    def input_schema(
        self, schema: PydanticModelClass[ValidT]
    ) -> InputValidatedTaskBuilder[ValidT, ValidT]: ...

    @overload
    def input_schema(
        self, schema: PydanticTypeAdapter[ValidT]
    ) -> InputValidatedTaskBuilder[ValidT, ValidT]: ...

    def input_schema(self, schema: object) -> InputValidatedTaskBuilder[Any, Any]:
        """Like :meth:`validate_input` with a pydantic model class or ``TypeAdapter``.

        Typed as taking the schema's type; at run time anything the schema accepts (a dict for
        a model…) is validated and converted. The stored run input is the value's JSON-mode dump.
        """
        self._check_open()
        codec = schema_codec(schema)
        return InputValidatedTaskBuilder(self._register, codec.validator, codec)

    @overload
    def sequential_tasks(
        self, t1: Task[InputT, OutputT], /, *, id: str | None = None
    ) -> Task[InputT, OutputT]: ...  # with an id, raises: a one-step chain is the task itself

    @overload
    def sequential_tasks(
        self, t1: Task[InputT, T1], t2: Task[T1, OutputT], /, *, id: str | None = None
    ) -> Task[InputT, OutputT]: ...

    @overload
    def sequential_tasks(
        self,
        t1: Task[InputT, T1],
        t2: Task[T1, T2],
        t3: Task[T2, OutputT],
        /,
        *,
        id: str | None = None,
    ) -> Task[InputT, OutputT]: ...

    @overload
    def sequential_tasks(
        self,
        t1: Task[InputT, T1],
        t2: Task[T1, T2],
        t3: Task[T2, T3],
        t4: Task[T3, OutputT],
        /,
        *,
        id: str | None = None,
    ) -> Task[InputT, OutputT]: ...

    @overload
    def sequential_tasks(
        self,
        t1: Task[InputT, T1],
        t2: Task[T1, T2],
        t3: Task[T2, T3],
        t4: Task[T3, T4],
        t5: Task[T4, OutputT],
        /,
        *,
        id: str | None = None,
    ) -> Task[InputT, OutputT]: ...

    @overload
    def sequential_tasks(
        self,
        t1: Task[InputT, T1],
        t2: Task[T1, T2],
        t3: Task[T2, T3],
        t4: Task[T3, T4],
        t5: Task[T4, T5],
        t6: Task[T5, OutputT],
        /,
        *,
        id: str | None = None,
    ) -> Task[InputT, OutputT]: ...

    @overload
    def sequential_tasks(
        self, /, *, id: str | None = None
    ) -> NoReturn: ...  # raises "No tasks provided"

    @overload
    def sequential_tasks(
        self,
        t1: Task[Any, Any],
        t2: Task[Any, Any],
        t3: Task[Any, Any],
        t4: Task[Any, Any],
        t5: Task[Any, Any],
        t6: Task[Any, Any],
        t7: Task[Any, Any],
        /,
        *tasks: Task[Any, Any],
        id: str | None = None,
    ) -> Task[Any, Any]: ...  # Any: longer chains are not type-checked link by link

    def sequential_tasks(self, *tasks: Task[Any, Any], id: str | None = None) -> Task[Any, Any]:
        """A task that runs ``tasks`` one after the other, each on the previous one's output.

        Its id is ``id`` or, without one, ``st_`` and a hash of the step ids: every process that
        registers the same steps gets the same chain, so a worker runs what another process
        enqueued. Registering the same steps under the same id again returns that chain; other
        steps under a taken id are refused. Built from wrapper parent tasks (three wrapper
        executions per link), as in the reference; see ``_sequential`` for their ids.
        """
        self._check_open()
        return self._chains.chain(tasks, id)

    # -- executions --------------------------------------------------------------------------

    @overload
    async def enqueue_task(
        self,
        task: Task[None, OutputT],
        input: None = None,
        options: TaskEnqueueOptions | None = None,
    ) -> TaskHandle[OutputT]: ...

    @overload
    async def enqueue_task(
        self,
        task: Task[InputT, OutputT],
        input: InputT,
        options: TaskEnqueueOptions | None = None,
    ) -> TaskHandle[OutputT]: ...

    async def enqueue_task(
        self,
        task: Task[Any, Any],
        input: object = None,
        options: TaskEnqueueOptions | None = None,
    ) -> TaskHandle[Any]:
        """Store a new execution of ``task`` and return its handle.

        The input is validated (if the task has a validator) and serialized first; if either
        fails, or the options are invalid, this raises and nothing is stored. Works before
        ``start()`` too: the execution waits for an executor to run it.

        With ``options.idempotency_key``: if an execution of ``task`` already holds that key
        (any status, enqueued by any process), nothing is stored and the handle is on that
        execution (see :class:`TaskEnqueueOptions`).

        Cancelled (or timed out) before its request was sent to the storage, the enqueue is
        withdrawn and nothing is stored; once sent, its shared transaction may still commit.
        """
        self._check_open()
        definition = self._registered(task)
        execution_id, subscribed = await self._enqueues.one(definition, input, options)
        return TaskHandle(self._rt, definition.id, execution_id, subscribed=subscribed)

    async def enqueue_tasks(
        self,
        task: Task[InputT, OutputT],
        inputs: Iterable[InputT],
        options: TaskEnqueueOptions | Sequence[TaskEnqueueOptions | None] | None = None,
    ) -> list[TaskHandle[OutputT]]:
        """Store one new execution of ``task`` per input, all in one transaction; their handles,
        in the order of ``inputs``.

        ``options`` applies to every input, or is a sequence with one per input (``None`` for
        the task's defaults): how each input gets its own idempotency key (one key for several
        inputs is refused). An input whose key is held gets a handle on the holder, in its
        place. All or nothing: if any input fails validation or serialization, or the options
        are invalid, this raises and nothing is stored. The fast way to enqueue many executions.
        """
        self._check_open()
        definition = self._registered(task)
        stored = await self._enqueues.many(definition, inputs, options)
        return [TaskHandle(self._rt, definition.id, i, subscribed=s) for i, s in stored]

    def _registered(self, task: Task[Any, Any]) -> TaskDefinition:
        definition = self._rt.registry.get(task.id)
        if definition is None:
            raise DurableExecutionNotFoundError(
                f"Task {task.id} not found. Register it with executor.task(...) or"
                " executor.parent_task(...) before enqueueing it"
            )
        return definition

    async def get_task_handle(
        self, task: Task[Any, OutputT], execution_id: str
    ) -> TaskHandle[OutputT]:
        """A handle on an existing execution of ``task``.

        Raises :class:`DurableExecutionNotFoundError` if the task is not registered here, the
        execution does not exist, or it belongs to another task.
        """
        if self._rt.registry.get(task.id) is None:
            raise DurableExecutionNotFoundError(
                f"Task {task.id} not found. Register it with this executor first"
            )
        check_execution_id(execution_id)
        record = await read_record(self._rt, execution_id)
        if record.task_id != task.id:
            raise DurableExecutionNotFoundError(
                f"Execution {execution_id} belongs to task {record.task_id}, not {task.id}"
            )
        return TaskHandle(self._rt, task.id, execution_id)

    @property
    def registered_task_ids(self) -> frozenset[str]:
        """Ids of every task registered here, finalize and sequential wrapper tasks included."""
        return self._rt.registry.ids()

    def get_running_task_execution_ids(self) -> frozenset[str]:
        """Ids of the executions whose attempts run in this executor right now."""
        return frozenset(self._rt.running)
