"""The durable executor: registers tasks, enqueues executions and runs the background loops.

Usage::

    executor = DurableExecutor(InMemoryStorage())

    @executor.task(id="greet", timeout_ms=1000)
    async def greet(ctx: TaskContext, name: str) -> str:
        return f"Hello, {name}!"

    async with executor:
        handle = await executor.enqueue_task(greet, "world")
        execution = await handle.wait_and_get_finished_execution()
        if execution.status == "completed":
            print(execution.output)

Four loops run while the executor is started: claiming ready executions (up to
``max_concurrent_task_executions`` running at once), closing finished ones, recovering expired
leases, and stopping local runs that another process cancelled; and, until the last attempt
finished, the renewal of this executor's leases. See the ``_claims``, ``_runner``, ``_closing``,
``_leases`` and ``_cancellation`` modules for what each guarantees.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AsyncExitStack
from typing import Any, Final, NoReturn, Protocol, TypeVar, overload

from durable_execution import clock
from durable_execution._cancellation import RemoteCancellationWatcher
from durable_execution._claims import ReadyClaimer
from durable_execution._closing import Closer
from durable_execution._coalescing import Coalescer
from durable_execution._leases import DEFAULT_EXPIRE_MS, DEFAULT_MAX_LEASE_EXPIRIES, LeaseKeeper
from durable_execution._loops import run_loop
from durable_execution._options import resolve_enqueue_options
from durable_execution._records import new_record
from durable_execution._registry import (
    make_definition,
    make_validator,
    storable_input,
    validated_input,
)
from durable_execution._runner import Runner
from durable_execution._runtime import ExecutorConfig, Runtime
from durable_execution._transactions import TransactionRunner
from durable_execution.builders import (
    InputValidatedTaskBuilder,
    PydanticModelClass,
    PydanticTypeAdapter,
    schema_codec,
)
from durable_execution.errors import (
    DurableExecutionError,
    DurableExecutionNotFoundError,
    executor_shutdown_error,
)
from durable_execution.handle import TaskHandle, read_record
from durable_execution.ids import generate_execution_id, generate_sequential_task_id
from durable_execution.model import RetryOptions
from durable_execution.payloads import FinalizeTaskInput, ParentTaskOutput
from durable_execution.serializer import CheckedSerializer, JsonSerializer, Serializer
from durable_execution.storage.types import (
    DurableStorage,
    DurableStorageTx,
    ReadyWatchingStorage,
    TaskExecutionRecord,
)
from durable_execution.tasks import (
    ChildTask,
    FinalizeTask,
    ParentTaskResult,
    RunParentFunction,
    Task,
    TaskContext,
    TaskDefinition,
    TaskEnqueueOptions,
)

InputT = TypeVar("InputT")
OutputT = TypeVar("OutputT")
RunOutputT = TypeVar("RunOutputT")
FinalOutputT = TypeVar("FinalOutputT")
ValidT = TypeVar("ValidT")
T1 = TypeVar("T1")
T2 = TypeVar("T2")
T3 = TypeVar("T3")
T4 = TypeVar("T4")
T5 = TypeVar("T5")

DEFAULT_INTRA_BATCH_SLEEP_MS: Final = 500
SEQUENTIAL_STEP_TIMEOUT_MS: Final = 1000
# Most executions one insert statement carries (SQLite binds each id of its duplicate check).
_ENQUEUE_CHUNK: Final = 500


class TaskDecorator(Protocol):
    """What ``executor.task(id=…, timeout_ms=…)`` returns when ``run`` is omitted."""

    @overload
    def __call__(
        self, run: Callable[[TaskContext, InputT], Awaitable[OutputT]], /
    ) -> Task[InputT, OutputT]: ...

    @overload
    def __call__(
        self, run: Callable[[TaskContext, InputT], OutputT], /
    ) -> Task[InputT, OutputT]: ...


class DurableExecutor:
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
        ``None`` re-runs forever, as the reference does."""
        if max_concurrent_task_executions < 1:
            raise ValueError("max_concurrent_task_executions must be >= 1")
        if max_serialized_size_bytes < 1:
            raise ValueError("max_serialized_size_bytes must be >= 1")
        if max_lease_expiries is not None and max_lease_expiries < 1:
            raise ValueError("max_lease_expiries must be >= 1 or None")
        self._logger = logger or logging.getLogger("durable_execution")
        self._rt = Runtime(
            transactions=TransactionRunner(storage, self._logger),
            serializer=CheckedSerializer(serializer or JsonSerializer(), max_serialized_size_bytes),
            logger=self._logger,
            config=ExecutorConfig(
                expire_ms=expire_ms if expire_ms > 0 else DEFAULT_EXPIRE_MS,
                intra_batch_sleep_ms=background_process_intra_batch_sleep_ms
                if background_process_intra_batch_sleep_ms > 0
                else DEFAULT_INTRA_BATCH_SLEEP_MS,
                max_concurrent_task_executions=max_concurrent_task_executions,
                max_lease_expiries=max_lease_expiries,
            ),
        )
        # Concurrent enqueue_task calls share a transaction (see _coalescing).
        self._enqueues: Coalescer[TaskExecutionRecord, None] = Coalescer(
            self._rt.transactions, _insert_records, max_batch=_ENQUEUE_CHUNK
        )
        self._watches = AsyncExitStack()  # the storage's ready watch, while started
        self._loops: list[asyncio.Task[None]] = []
        self._keeper: LeaseKeeper | None = None  # renews the leases, while started
        self._shutdown_done: asyncio.Event | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the background loops; returns once they run. Calling it again is harmless."""
        self._check_open()
        if self._loops:
            return
        rt = self._rt
        runner = Runner(rt)
        keeper = self._keeper = LeaseKeeper(rt)
        loops: list[tuple[str, Callable[[], Awaitable[bool]], asyncio.Event | None]] = [
            ("process ready executions", ReadyClaimer(rt, runner).batch, rt.ready_wakeup),
            ("close finished executions", Closer(rt).batch, rt.close_wakeup),
            ("expire leases", keeper.expirer.batch, None),
            ("cancel runs cancelled elsewhere", RemoteCancellationWatcher(rt).batch, None),
        ]
        storage = rt.transactions.storage
        if isinstance(storage, ReadyWatchingStorage):
            # Work other processes make ready wakes the claim loop at once, not at its next poll.
            await self._watches.enter_async_context(storage.watch_ready(rt.ready_wakeup.set))
        self._loops = [
            asyncio.create_task(run_loop(name, rt, batch, wakeup), name=f"durable-execution:{name}")
            for name, batch, wakeup in loops
        ]
        keeper.start()  # not a loop: it renews until the last attempt is over, shutdown too
        await asyncio.sleep(0)

    async def shutdown(self) -> None:
        """Stop the loops (interrupting their idle waits) and wait for the running attempts.

        Running attempts are not cancelled: they can watch ``ctx.is_shutdown_requested()``.
        Idempotent; concurrent calls all return once shutdown completed.
        """
        if self._shutdown_done is not None:
            await self._shutdown_done.wait()
            return
        self._shutdown_done = asyncio.Event()
        try:
            self._logger.info("Executor shutting down")
            rt = self._rt
            rt.request_shutdown()
            await asyncio.gather(*self._loops, return_exceptions=True)
            await self._enqueues.wait_idle()
            while rt.running:
                runs = [run.task for run in rt.running.values() if run.task is not None]
                await asyncio.gather(*runs, return_exceptions=True)
            if self._keeper is not None:
                await self._keeper.stop()
            await self._watches.aclose()
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
        run: Callable[[TaskContext, InputT], Awaitable[OutputT]],
        retry_options: RetryOptions | None = None,
        sleep_ms_before_run: int | None = None,
    ) -> Task[InputT, OutputT]: ...

    @overload
    def task(
        self,
        *,
        id: str,
        timeout_ms: int,
        run: Callable[[TaskContext, InputT], OutputT],
        retry_options: RetryOptions | None = None,
        sleep_ms_before_run: int | None = None,
    ) -> Task[InputT, OutputT]: ...

    @overload
    def task(
        self,
        *,
        id: str,
        timeout_ms: int,
        retry_options: RetryOptions | None = None,
        sleep_ms_before_run: int | None = None,
    ) -> TaskDecorator: ...

    def task(
        self,
        *,
        id: str,
        timeout_ms: int,
        run: Callable[[TaskContext, Any], Any] | None = None,
        retry_options: RetryOptions | None = None,
        sleep_ms_before_run: int | None = None,
    ) -> Task[Any, Any] | TaskDecorator:
        """Register a task; without ``run``, a decorator that registers the decorated function.

        ``run(ctx, input)`` may be sync (run in a worker thread) or async.
        """

        def register(function: Callable[[TaskContext, Any], Any]) -> Task[Any, Any]:
            definition = make_definition(
                id=id,
                timeout_ms=timeout_ms,
                run=function,
                shape="simple",
                retry_options=retry_options,
                sleep_ms_before_run=sleep_ms_before_run,
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
        run_parent: RunParentFunction[InputT, RunOutputT],
        finalize_task: None = None,
        retry_options: RetryOptions | None = None,
        sleep_ms_before_run: int | None = None,
    ) -> Task[InputT, ParentTaskOutput[RunOutputT]]: ...

    @overload
    def parent_task(
        self,
        *,
        id: str,
        timeout_ms: int,
        run_parent: RunParentFunction[InputT, RunOutputT],
        finalize_task: FinalizeTask[FinalizeTaskInput[InputT, RunOutputT], FinalOutputT],
        retry_options: RetryOptions | None = None,
        sleep_ms_before_run: int | None = None,
    ) -> Task[InputT, FinalOutputT]: ...

    def parent_task(
        self,
        *,
        id: str,
        timeout_ms: int,
        run_parent: Callable[[TaskContext, Any], Any],
        finalize_task: FinalizeTask[Any, Any] | None = None,
        retry_options: RetryOptions | None = None,
        sleep_ms_before_run: int | None = None,
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
        )
        self._register(definition)
        return Task(definition)

    @overload
    def validate_input(
        self, validate: Callable[[InputT], Awaitable[ValidT]]
    ) -> InputValidatedTaskBuilder[InputT, ValidT]: ...

    @overload
    def validate_input(
        self, validate: Callable[[InputT], ValidT]
    ) -> InputValidatedTaskBuilder[InputT, ValidT]: ...

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
    def sequential_tasks(self, t1: Task[InputT, OutputT], /) -> Task[InputT, OutputT]: ...

    @overload
    def sequential_tasks(
        self, t1: Task[InputT, T1], t2: Task[T1, OutputT], /
    ) -> Task[InputT, OutputT]: ...

    @overload
    def sequential_tasks(
        self, t1: Task[InputT, T1], t2: Task[T1, T2], t3: Task[T2, OutputT], /
    ) -> Task[InputT, OutputT]: ...

    @overload
    def sequential_tasks(
        self,
        t1: Task[InputT, T1],
        t2: Task[T1, T2],
        t3: Task[T2, T3],
        t4: Task[T3, OutputT],
        /,
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
    ) -> Task[InputT, OutputT]: ...

    @overload
    def sequential_tasks(self, /) -> NoReturn: ...  # raises "No tasks provided"

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
    ) -> Task[Any, Any]: ...  # Any: longer chains are not type-checked link by link

    def sequential_tasks(self, *tasks: Task[Any, Any]) -> Task[Any, Any]:
        """A task that runs ``tasks`` one after the other, each on the previous one's output.

        Built from wrapper parent tasks ``st_<16 chars>`` (three wrapper executions per link),
        as in the reference.
        """
        self._check_open()
        if not tasks:
            raise DurableExecutionError("No tasks provided", is_retryable=False)
        for task in tasks:
            if not isinstance(task, Task) or self._rt.registry.get(task.id) is None:
                raise DurableExecutionNotFoundError(
                    f"Task {getattr(task, 'id', task)} not found. Register it with this executor"
                    " before using it in sequential_tasks"
                )
        if len(tasks) == 1:
            return tasks[0]
        first, rest = tasks[0], self.sequential_tasks(*tasks[1:])
        wrapper_id = generate_sequential_task_id()

        async def run_first(ctx: TaskContext, value: object) -> ParentTaskResult[None]:
            return ParentTaskResult(output=None, children_tasks=[ChildTask(first, value)])

        async def run_rest(
            ctx: TaskContext, finalize_input: FinalizeTaskInput[object, None]
        ) -> ParentTaskResult[None]:
            previous = finalize_input.children_tasks_outputs[0].output
            return ParentTaskResult(output=None, children_tasks=[ChildTask(rest, previous)])

        async def last_output(
            ctx: TaskContext,
            finalize_input: FinalizeTaskInput[FinalizeTaskInput[object, None], None],
        ) -> object:
            return finalize_input.children_tasks_outputs[0].output

        return self.parent_task(
            id=wrapper_id,
            timeout_ms=SEQUENTIAL_STEP_TIMEOUT_MS,
            run_parent=run_first,
            finalize_task=FinalizeTask(
                id=f"{wrapper_id}_finalize_1",
                timeout_ms=SEQUENTIAL_STEP_TIMEOUT_MS,
                run_parent=run_rest,
                finalize_task=FinalizeTask(
                    id=f"{wrapper_id}_finalize_2",
                    timeout_ms=SEQUENTIAL_STEP_TIMEOUT_MS,
                    run=last_output,
                ),
            ),
        )

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
        """
        self._check_open()
        definition = self._registered(task)
        record = await self._new_record(definition, input, options)
        await self._enqueues.submit(record)
        self._rt.wake_ready_at([record.start_at])
        self._logger.debug("Enqueued %s as %s", definition.id, record.execution_id)
        return TaskHandle(self._rt, definition.id, record.execution_id)

    async def enqueue_tasks(
        self,
        task: Task[InputT, OutputT],
        inputs: Iterable[InputT],
        options: TaskEnqueueOptions | None = None,
    ) -> list[TaskHandle[OutputT]]:
        """Store one new execution of ``task`` per input, all in one transaction; their handles,
        in the order of ``inputs``.

        All or nothing: if any input fails validation or serialization, or the options are
        invalid, this raises and nothing is stored. The fast way to enqueue many executions.
        """
        self._check_open()
        definition = self._registered(task)
        records = [await self._new_record(definition, value, options) for value in inputs]

        async def insert(tx: DurableStorageTx) -> None:
            # Chunks keep each statement's id list under SQLite's bound-variable limit.
            for start in range(0, len(records), _ENQUEUE_CHUNK):
                await tx.insert_task_executions(records[start : start + _ENQUEUE_CHUNK])

        if records:
            await self._rt.transactions.run(insert)
            self._rt.wake_ready_at([records[0].start_at])
        self._logger.debug("Enqueued %d executions of %s", len(records), definition.id)
        return [TaskHandle(self._rt, definition.id, record.execution_id) for record in records]

    def _registered(self, task: Task[Any, Any]) -> TaskDefinition:
        definition = self._rt.registry.get(task.id)
        if definition is None:
            raise DurableExecutionNotFoundError(
                f"Task {task.id} not found. Register it with executor.task(...) or"
                " executor.parent_task(...) before enqueueing it"
            )
        return definition

    async def _new_record(
        self, definition: TaskDefinition, input: object, options: TaskEnqueueOptions | None
    ) -> TaskExecutionRecord:
        resolved = resolve_enqueue_options(definition, options)
        validated = await validated_input(definition, input)
        run_input = self._rt.serializer.serialize_limited(storable_input(definition, validated))
        return new_record(
            task_id=definition.id,
            execution_id=generate_execution_id(),
            options=resolved,
            run_input=run_input,
            now=clock.now(),
        )

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


async def _insert_records(
    tx: DurableStorageTx, records: Sequence[TaskExecutionRecord]
) -> list[None]:
    await tx.insert_task_executions(records)
    return [None] * len(records)
