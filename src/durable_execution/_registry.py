"""Turning registration arguments into validated task definitions, and the registry holding them.

Registration is all-or-nothing: a parent, its finalize task and the finalize task's own finalize
tasks are all validated before any of them is registered, and every id (finalize ids included)
must be new and distinct — the reference let a finalize task silently share its parent's id.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Literal

from durable_execution._options import registration_options
from durable_execution.errors import DurableExecutionError
from durable_execution.ids import validate_id
from durable_execution.payloads import FinalizeTaskInput
from durable_execution.tasks import FinalizeTask, TaskContext, TaskDefinition, is_async_callable

InputValidator = Callable[[object], Awaitable[object]]
InputConverter = Callable[[object], object]


def _check_callable(task_id: str, name: str, function: object) -> None:
    if not callable(function):
        raise DurableExecutionError(
            f"Invalid {name} function for task {task_id}: expected a callable, got"
            f" {type(function).__name__}",
            is_retryable=False,
        )


def make_definition(
    *,
    id: str,
    timeout_ms: object,
    run: Callable[[TaskContext, Any], Any],
    shape: Literal["simple", "parent"],
    retry_options: object = None,
    sleep_ms_before_run: object = None,
    finalize_task: FinalizeTask[Any, Any] | None = None,
    validator: InputValidator | None = None,
    dump_input: InputConverter | None = None,
    load_input: InputConverter | None = None,
) -> TaskDefinition:
    """A validated definition; ``finalize_task`` (parents only) is converted recursively."""
    validate_id(id)
    options = registration_options(
        id,
        timeout_ms=timeout_ms,
        retry_options=retry_options,
        sleep_ms_before_run=sleep_ms_before_run,
    )
    _check_callable(id, "run" if shape == "simple" else "run_parent", run)
    finalize = None if finalize_task is None else finalize_definition(finalize_task, load_input)
    return TaskDefinition(
        id=id,
        timeout_ms=options.timeout_ms,
        retry_options=options.retry_options,
        sleep_ms_before_run=options.sleep_ms_before_run,
        run=run,
        is_async=is_async_callable(run),
        shape=shape,
        finalize=finalize,
        validator=validator,
        dump_input=dump_input,
        load_input=load_input,
    )


def _finalize_input_loader(load_parent_input: InputConverter) -> InputConverter:
    """Loads the parent's input inside a finalize task's input (see TaskDefinition)."""

    def load(value: object) -> object:
        if not isinstance(value, FinalizeTaskInput):
            return value
        return FinalizeTaskInput(
            input=load_parent_input(value.input),
            output=value.output,
            children_tasks_outputs=value.children_tasks_outputs,
        )

    return load


def finalize_definition(
    finalize_task: FinalizeTask[Any, Any], load_parent_input: InputConverter | None = None
) -> TaskDefinition:
    if not isinstance(finalize_task, FinalizeTask):
        raise DurableExecutionError(
            f"finalize_task must be a FinalizeTask, got {type(finalize_task).__name__}",
            is_retryable=False,
        )
    task_id = finalize_task.id
    run, run_parent = finalize_task.run, finalize_task.run_parent
    if (run is None) == (run_parent is None):
        raise DurableExecutionError(
            f"Invalid finalize task {task_id}: give exactly one of run and run_parent",
            is_retryable=False,
        )
    if run is not None and finalize_task.finalize_task is not None:
        raise DurableExecutionError(
            f"Invalid finalize task {task_id}: only a run_parent finalize task can have its own"
            " finalize_task",
            is_retryable=False,
        )
    return make_definition(
        id=task_id,
        timeout_ms=finalize_task.timeout_ms,
        run=run if run is not None else run_parent,  # type: ignore[arg-type]
        shape="simple" if run is not None else "parent",
        retry_options=finalize_task.retry_options,
        sleep_ms_before_run=finalize_task.sleep_ms_before_run,
        finalize_task=finalize_task.finalize_task,
        load_input=None if load_parent_input is None else _finalize_input_loader(load_parent_input),
    )


def _with_finalize_chain(definition: TaskDefinition) -> Iterator[TaskDefinition]:
    current: TaskDefinition | None = definition
    while current is not None:
        yield current
        current = current.finalize


class TaskRegistry:
    def __init__(self) -> None:
        self._tasks: dict[str, TaskDefinition] = {}

    def get(self, task_id: str) -> TaskDefinition | None:
        return self._tasks.get(task_id)

    def ids(self) -> frozenset[str]:
        return frozenset(self._tasks)

    def register(self, definition: TaskDefinition) -> None:
        """Register ``definition`` and its finalize chain, or nothing if any id is taken."""
        chain = list(_with_finalize_chain(definition))
        seen: set[str] = set()
        for item in chain:
            if item.id in self._tasks or item.id in seen:
                raise DurableExecutionError(
                    f"Task {item.id} already exists. Task ids, finalize task ids included, must"
                    " be unique within an executor",
                    is_retryable=False,
                )
            seen.add(item.id)
        for item in chain:
            self._tasks[item.id] = item


async def validated_input(definition: TaskDefinition, value: object) -> object:
    """The run input for ``value``: the task's validator output, or ``value`` itself."""
    validator = definition.validator
    if validator is None:
        return value
    try:
        return await validator(value)
    except Exception as error:
        raise _invalid_input(definition, error) from error


def validated_input_sync(definition: TaskDefinition, value: object) -> object:
    """:func:`validated_input` without an event loop (the ``SyncClient``'s enqueue).

    Only a synchronous validation function can run here; an async one (or one that returns an
    awaitable) is refused with an error saying so, since there is no loop to await it on.
    """
    validator = definition.validator
    if validator is None:
        return value
    if not isinstance(validator, Validator) or validator.is_async:
        raise _async_validator_error(definition)
    try:
        result = validator.function(value)
    except Exception as error:
        raise _invalid_input(definition, error) from error
    if inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()  # never awaited: close it rather than leave a "never awaited" warning
        raise _async_validator_error(definition)
    return result


def _invalid_input(definition: TaskDefinition, error: Exception) -> DurableExecutionError:
    message = error.message if isinstance(error, DurableExecutionError) else str(error)
    return DurableExecutionError(
        f"Invalid input to task {definition.id}: {message}", is_retryable=False
    )


def _async_validator_error(definition: TaskDefinition) -> DurableExecutionError:
    return DurableExecutionError(
        f"Task {definition.id} validates its input with an async function, which a SyncClient"
        " cannot await: enqueue it from async code (DurableExecutor.enqueue_task), or make the"
        " validation function synchronous",
        is_retryable=False,
    )


def storable_input(definition: TaskDefinition, validated: object) -> object:
    """What is serialized as the run input of ``definition`` for the validated input."""
    return validated if definition.dump_input is None else definition.dump_input(validated)


def loaded_input(definition: TaskDefinition, stored: object) -> object:
    """What the run function receives for the deserialized stored input."""
    if definition.load_input is None:
        return stored
    try:
        return definition.load_input(stored)
    except Exception as error:
        raise DurableExecutionError(
            f"Invalid input to task {definition.id}: {error}", is_retryable=False
        ) from error


class Validator:
    """A task's input validation function in the one async shape definitions store, remembering
    whether the function itself is synchronous (then a ``SyncClient`` can call it directly)."""

    __slots__ = ("function", "is_async")

    def __init__(self, function: Callable[[Any], object]) -> None:
        self.function = function
        self.is_async = is_async_callable(function)

    async def __call__(self, value: object) -> object:
        result = self.function(value)
        if inspect.isawaitable(result):
            result = await result
        return result


def make_validator(function: Callable[[Any], object]) -> InputValidator:
    """Adapt a sync or async validation function to the one async shape definitions store."""
    return Validator(function)
