"""``executor.task(...)`` and ``executor.parent_task(...)``: registering tasks, typed.

A base class of :class:`~durable_execution.executor.DurableExecutor` (which provides
``_register``), kept apart because the typed overloads of the two methods are long.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

from durable_execution._registry import make_definition
from durable_execution.model import RetryOptions
from durable_execution.payloads import FinalizeTaskInput, ParentTaskOutput
from durable_execution.serializer import Serializable
from durable_execution.tasks import (
    DEFAULT_QUEUE,
    FinalizeTask,
    RunParentFunction,
    Task,
    TaskContext,
    TaskDecorator,
    TaskDefinition,
)

FinalOutputT = TypeVar("FinalOutputT")
# Stored by the serializer: see durable_execution.serializer.Serializable (and executor.py).
StorableInputT = TypeVar("StorableInputT", bound=Serializable)
StorableOutputT = TypeVar("StorableOutputT", bound=Serializable)
StorableRunOutputT = TypeVar("StorableRunOutputT", bound=Serializable)


class TaskRegistration:
    def _register(self, definition: TaskDefinition) -> None:
        raise NotImplementedError  # DurableExecutor registers (and refuses once shut down)

    def _check_open(self) -> None:
        raise NotImplementedError

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
