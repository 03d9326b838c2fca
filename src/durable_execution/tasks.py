"""What users define: tasks, their run context, children, finalize tasks and enqueue options.

A :class:`Task` is only a typed reference (``Task[InputT, OutputT]``) to a definition registered
in one executor; the executor stores executions by task id, so every executor sharing a storage
must register the same tasks.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeAlias, TypeVar, overload

from durable_execution.model import ExecutionErrorInfo, RetryOptions
from durable_execution.payloads import ChildTaskOutput, FinalizeTaskInput, ParentTaskOutput
from durable_execution.serializer import Serializable

__all__ = [
    "AnyChildTask",
    "ChildTask",
    "ChildTaskOutput",
    "FinalizeTask",
    "FinalizeTaskInput",
    "ParentTaskOutput",
    "ParentTaskResult",
    "RunParentFunction",
    "Task",
    "TaskContext",
    "TaskDefinition",
    "TaskEnqueueOptions",
]

InputT_contra = TypeVar("InputT_contra", contravariant=True)
InputT_co = TypeVar("InputT_co", covariant=True)
OutputT_co = TypeVar("OutputT_co", covariant=True)
InputT = TypeVar("InputT")
OutputT = TypeVar("OutputT")
RunOutputT = TypeVar("RunOutputT")
FinalOutputT = TypeVar("FinalOutputT")
# The outputs of finalize tasks are stored: see durable_execution.serializer.Serializable.
StorableOutputT = TypeVar("StorableOutputT", bound=Serializable)
StorableRunOutputT = TypeVar("StorableRunOutputT", bound=Serializable)


class TaskContext:
    """What a run function learns about its execution, passed as its first argument.

    ``attempt`` is 0 on the first run and counts retries; ``prev_error`` is the error the previous
    attempt left (or ``Task expired`` after crash recovery). Cancellation (a user cancel, a failed
    parent, or the attempt's timeout) and executor shutdown can be polled — also from a sync run
    function in its worker thread — or awaited.
    """

    __slots__ = ("_cancelled", "_shutdown", "attempt", "execution_id", "prev_error", "task_id")

    def __init__(
        self,
        *,
        task_id: str,
        execution_id: str,
        attempt: int,
        prev_error: ExecutionErrorInfo | None,
        cancelled: asyncio.Event,
        shutdown: asyncio.Event,
    ) -> None:
        self.task_id = task_id
        self.execution_id = execution_id
        self.attempt = attempt
        self.prev_error = prev_error
        self._cancelled = cancelled
        self._shutdown = shutdown

    def is_cancelled(self) -> bool:
        return self._cancelled.is_set()

    def is_shutdown_requested(self) -> bool:
        return self._shutdown.is_set()

    async def wait_for_cancellation(self) -> None:
        await self._cancelled.wait()

    async def wait_for_shutdown(self) -> None:
        await self._shutdown.wait()

    def __repr__(self) -> str:
        return (
            f"TaskContext(task_id={self.task_id!r}, execution_id={self.execution_id!r},"
            f" attempt={self.attempt})"
        )


@dataclass(frozen=True, slots=True)
class TaskEnqueueOptions:
    """Per-execution overrides of a task's defaults, validated like the task's own options.

    ``priority``: claims take higher priorities first, FIFO (by ``start_at``) within one; an
    integer from -2**31 to 2**31 - 1. ``None``: 0 for an enqueued execution, the parent's
    priority for a child (children and finalize executions run at their parent's priority
    unless a child's options say otherwise).

    ``idempotency_key`` (``enqueue_task``/``enqueue_tasks`` only, not children): at most one
    execution of a task exists per key. Enqueuing with a key that an execution of the same task
    already holds, in any status, returns a handle on that execution instead of storing a new
    one (its input and options are not compared: the first one wins), also when many processes
    enqueue it at once. The key is freed when retention deletes its execution. A non-empty
    string of at most 255 characters.
    """

    retry_options: RetryOptions | None = None
    sleep_ms_before_run: int | None = None
    timeout_ms: int | None = None
    priority: int | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class TaskDefinition:
    """A registered task as the executor runs it (internal).

    Every task is run parent-shaped: ``run`` returns a :class:`ParentTaskResult` for ``parent``
    tasks and a bare output for ``simple`` ones. ``validator`` maps the enqueued input to the run
    input (raising on invalid input); finalize tasks never have one.

    ``dump_input``/``load_input`` exist for schema-validated tasks whose validated values (pydantic
    models…) the serializer cannot store: the stored run input is ``dump_input(validated)`` and
    the run function receives ``load_input(stored)``. A finalize task of such a parent loads the
    ``input`` of its :class:`FinalizeTaskInput` the same way.
    """

    id: str
    timeout_ms: int
    retry_options: RetryOptions
    sleep_ms_before_run: int
    # Any: the run function's input and output types are erased once tasks share a registry;
    # the public Task[I, O] keeps them for the caller.
    run: Callable[[TaskContext, Any], Any]
    is_async: bool
    shape: Literal["simple", "parent"]
    finalize: TaskDefinition | None = None
    validator: Callable[[object], Awaitable[object]] | None = None
    dump_input: Callable[[object], object] | None = None
    load_input: Callable[[object], object] | None = None


class Task(Generic[InputT, OutputT_co]):
    """A registered task: enqueue it with an input of type ``InputT``, get ``OutputT`` back."""

    __slots__ = ("_definition",)

    def __init__(self, definition: TaskDefinition) -> None:
        self._definition = definition

    @property
    def id(self) -> str:
        return self._definition.id

    def __repr__(self) -> str:
        return f"Task(id={self.id!r})"


def definition_of(task: Task[Any, Any]) -> TaskDefinition:
    """The definition ``task`` refers to (internal: a ``SyncClient`` has no registry of its own
    and enqueues with the definition the task was registered with)."""
    return task._definition


class AnyChildTask:
    """A child of any task: the element type of :attr:`ParentTaskResult.children_tasks`.

    Annotate a list of children with it (``children: list[AnyChildTask] = []``): being neither
    generic nor ``Any``, it gives ``ChildTask(task, input)`` no type to infer from, so mypy checks
    each child's input against its own task. (``list[ChildTask[Any]]`` would make every input
    ``Any`` and check nothing.) Only :class:`ChildTask` creates instances.
    """

    __slots__ = ()

    # Any: once children of different tasks share a list, a child's input type is erased; the
    # ChildTask constructor checked it against the task.
    task: Task[Any, object]
    input: object
    options: TaskEnqueueOptions | None


# No slots: with slots, a frozen generic dataclass cannot be instantiated as Cls[T](...).
@dataclass(frozen=True, init=False)
class ChildTask(AnyChildTask, Generic[InputT_co]):
    """One child a parent task starts: ``task`` run with ``input`` (and optional overrides).

    The constructor checks ``input`` against ``task``'s input type. The class is covariant in
    the input so that ``[ChildTask(a, 1), ChildTask(b, "x")]`` is a ``list[ChildTask[object]]``;
    that is sound because ``task`` is typed with an erased input once built.
    """

    task: Task[Any, object]
    input: InputT_co
    options: TaskEnqueueOptions | None

    def __init__(
        self,
        task: Task[InputT_co, object],
        input: InputT_co,
        options: TaskEnqueueOptions | None = None,
    ) -> None:
        object.__setattr__(self, "task", task)
        object.__setattr__(self, "input", input)
        object.__setattr__(self, "options", options)


# No slots: with slots, a frozen generic dataclass cannot be instantiated as Cls[T](...).
@dataclass(frozen=True)
class ParentTaskResult(Generic[OutputT_co]):
    """What ``run_parent`` returns: its own output and the children to start (maybe none)."""

    output: OutputT_co
    # Not ChildTask[Any]: an Any element type would let ChildTask(task, input) infer Any from
    # it and accept any input. AnyChildTask gives inference nothing, so the input is checked.
    children_tasks: Sequence[AnyChildTask] = ()


RunParentFunction: TypeAlias = Callable[
    [TaskContext, InputT],
    ParentTaskResult[RunOutputT] | Awaitable[ParentTaskResult[RunOutputT]],
]


class FinalizeTask(Generic[InputT_contra, OutputT_co]):
    """The task that combines a parent's results once all its children completed.

    Either simple-shaped (``run``) or parent-shaped (``run_parent`` with its own children and
    optional ``finalize_task``). Its input is a :class:`FinalizeTaskInput`; its id is registered
    like any task id and must be unique. Finalize executions use the options given here.
    """

    __slots__ = (
        "finalize_task",
        "id",
        "retry_options",
        "run",
        "run_parent",
        "sleep_ms_before_run",
        "timeout_ms",
    )

    @overload
    def __init__(
        self: FinalizeTask[InputT, StorableOutputT],
        *,
        id: str,
        timeout_ms: int,
        run: Callable[[TaskContext, InputT], StorableOutputT],
        retry_options: RetryOptions | None = None,
        sleep_ms_before_run: int | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self: FinalizeTask[InputT, StorableOutputT],
        *,
        id: str,
        timeout_ms: int,
        run: Callable[[TaskContext, InputT], Awaitable[StorableOutputT]],
        retry_options: RetryOptions | None = None,
        sleep_ms_before_run: int | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self: FinalizeTask[InputT, ParentTaskOutput[StorableRunOutputT]],
        *,
        id: str,
        timeout_ms: int,
        run_parent: RunParentFunction[InputT, StorableRunOutputT],
        finalize_task: None = None,
        retry_options: RetryOptions | None = None,
        sleep_ms_before_run: int | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self: FinalizeTask[InputT, FinalOutputT],
        *,
        id: str,
        timeout_ms: int,
        run_parent: RunParentFunction[InputT, StorableRunOutputT],
        finalize_task: FinalizeTask[FinalizeTaskInput[InputT, StorableRunOutputT], FinalOutputT],
        retry_options: RetryOptions | None = None,
        sleep_ms_before_run: int | None = None,
    ) -> None: ...

    def __init__(
        self,
        *,
        id: str,
        timeout_ms: int,
        run: Callable[[TaskContext, Any], Any] | None = None,
        run_parent: Callable[[TaskContext, Any], Any] | None = None,
        finalize_task: FinalizeTask[Any, Any] | None = None,
        retry_options: RetryOptions | None = None,
        sleep_ms_before_run: int | None = None,
    ) -> None:
        self.id = id
        self.timeout_ms = timeout_ms
        self.run = run
        self.run_parent = run_parent
        self.finalize_task = finalize_task
        self.retry_options = retry_options
        self.sleep_ms_before_run = sleep_ms_before_run

    def __repr__(self) -> str:
        return f"FinalizeTask(id={self.id!r})"


def is_async_callable(function: Callable[..., object]) -> bool:
    """Whether calling ``function`` returns a coroutine (``functools.partial`` included)."""
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        getattr(function, "__call__", None)  # noqa: B004 - async __call__ of callable objects
    )
