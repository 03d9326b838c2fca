"""Registering tasks whose input is validated first: ``executor.validate_input(fn)`` and
``executor.input_schema(schema)`` return an :class:`InputValidatedTaskBuilder`.

The validator runs at ``enqueue_task`` (an invalid input raises there and nothing is stored) and
when a parent creates the task as a child (an invalid input fails the parent's attempt). Its
return value is what the run function receives and what is stored as the run input.

Schemas are pydantic models or ``pydantic.TypeAdapter`` objects; pydantic is optional and only
needed for ``input_schema``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, overload

from durable_execution._registry import (
    InputConverter,
    InputValidator,
    make_definition,
    make_validator,
)
from durable_execution.errors import DurableExecutionError
from durable_execution.model import RetryOptions
from durable_execution.payloads import FinalizeTaskInput, ParentTaskOutput
from durable_execution.serializer import Serializable
from durable_execution.tasks import (
    DEFAULT_QUEUE,
    FinalizeTask,
    RunParentFunction,
    Task,
    TaskContext,
    TaskDefinition,
)

RawInputT = TypeVar("RawInputT")
ValidT = TypeVar("ValidT")
# Outputs are stored by the serializer: see durable_execution.serializer.Serializable. Inputs
# are not bounded here: input_schema() stores a dump of the validated value, and the executor's
# validate_input() bounds its own validated type.
StorableOutputT = TypeVar("StorableOutputT", bound=Serializable)
StorableRunOutputT = TypeVar("StorableRunOutputT", bound=Serializable)
FinalOutputT = TypeVar("FinalOutputT")
ValidT_co = TypeVar("ValidT_co", covariant=True)


class PydanticModelClass(Protocol[ValidT_co]):
    """A pydantic model class, matched structurally: type-checking needs no pydantic."""

    # Any: pydantic validates arbitrary input; that is its job.
    def model_validate(self, obj: Any, /) -> ValidT_co: ...


class PydanticTypeAdapter(Protocol[ValidT_co]):
    """A ``pydantic.TypeAdapter`` (structurally)."""

    # Any: as above.
    def validate_python(self, object: Any, /) -> ValidT_co: ...


def _format_validation_error(error: Exception) -> str:
    """One line per issue (a multiplication sign and the message), then its location, if any."""
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return str(error)
    lines: list[str] = []
    for issue in errors():
        lines.append(f"\N{MULTIPLICATION SIGN} {issue.get('msg', 'invalid value')}")
        location = issue.get("loc") or ()
        if location:
            lines.append(f"  → at {'.'.join(str(part) for part in location)}")
    return "\n".join(lines) or str(error)


@dataclass(frozen=True, slots=True)
class SchemaCodec:
    """How a schema task validates its input, and stores and reloads the validated value.

    Validated values (model instances…) are stored as their JSON-mode dump and validated again
    when the run starts, so any pydantic type works with any serializer. A validator that does
    not give back an equal value for its own dump would see the difference; pydantic models
    normally round-trip.
    """

    validator: InputValidator
    dump: InputConverter
    load: InputConverter


def schema_codec(schema: object) -> SchemaCodec:
    """The codec of a pydantic model class or TypeAdapter; clear errors when unusable."""
    try:
        import pydantic
    except ImportError:  # pragma: no cover - pydantic is installed in development
        raise DurableExecutionError(
            "input_schema needs pydantic; install it with:"
            " pip install 'durable-execution[pydantic]'",
            is_retryable=False,
        ) from None
    adapter: pydantic.TypeAdapter[Any]
    if isinstance(schema, type) and issubclass(schema, pydantic.BaseModel):
        adapter = pydantic.TypeAdapter(schema)
    elif isinstance(schema, pydantic.TypeAdapter):
        adapter = schema
    else:
        raise DurableExecutionError(
            "input_schema expects a pydantic model class or a pydantic.TypeAdapter, got"
            f" {type(schema).__name__}",
            is_retryable=False,
        )

    def validate(value: object) -> object:
        try:
            return adapter.validate_python(value)
        except pydantic.ValidationError as error:
            raise ValueError(_format_validation_error(error)) from error

    def dump(value: object) -> object:
        return adapter.dump_python(value, mode="json")

    return SchemaCodec(validator=make_validator(validate), dump=dump, load=validate)


class InputValidatedTaskBuilder(Generic[RawInputT, ValidT]):
    """Registers tasks that take ``RawInputT`` and run on the validated ``ValidT``."""

    def __init__(
        self,
        register: Callable[[TaskDefinition], None],
        validator: InputValidator,
        codec: SchemaCodec | None = None,
    ) -> None:
        self._register = register
        self._validator = validator
        self._dump = None if codec is None else codec.dump
        self._load = None if codec is None else codec.load

    @overload
    def task(
        self,
        *,
        id: str,
        timeout_ms: int,
        run: Callable[[TaskContext, ValidT], StorableOutputT],
        retry_options: RetryOptions | None = None,
        sleep_ms_before_run: int | None = None,
        queue: str = DEFAULT_QUEUE,
        concurrency_limit: int | None = None,
    ) -> Task[RawInputT, StorableOutputT]: ...

    @overload
    def task(
        self,
        *,
        id: str,
        timeout_ms: int,
        run: Callable[[TaskContext, ValidT], Awaitable[StorableOutputT]],
        retry_options: RetryOptions | None = None,
        sleep_ms_before_run: int | None = None,
        queue: str = DEFAULT_QUEUE,
        concurrency_limit: int | None = None,
    ) -> Task[RawInputT, StorableOutputT]: ...

    def task(
        self,
        *,
        id: str,
        timeout_ms: int,
        run: Callable[[TaskContext, Any], Any],
        retry_options: RetryOptions | None = None,
        sleep_ms_before_run: int | None = None,
        queue: str = DEFAULT_QUEUE,
        concurrency_limit: int | None = None,
    ) -> Task[Any, Any]:
        definition = make_definition(
            id=id,
            timeout_ms=timeout_ms,
            run=run,
            shape="simple",
            retry_options=retry_options,
            sleep_ms_before_run=sleep_ms_before_run,
            queue=queue,
            concurrency_limit=concurrency_limit,
            validator=self._validator,
            dump_input=self._dump,
            load_input=self._load,
        )
        self._register(definition)
        return Task(definition)

    @overload
    def parent_task(
        self,
        *,
        id: str,
        timeout_ms: int,
        run_parent: RunParentFunction[ValidT, StorableRunOutputT],
        finalize_task: None = None,
        retry_options: RetryOptions | None = None,
        sleep_ms_before_run: int | None = None,
        queue: str = DEFAULT_QUEUE,
        concurrency_limit: int | None = None,
    ) -> Task[RawInputT, ParentTaskOutput[StorableRunOutputT]]: ...

    @overload
    def parent_task(
        self,
        *,
        id: str,
        timeout_ms: int,
        run_parent: RunParentFunction[ValidT, StorableRunOutputT],
        finalize_task: FinalizeTask[FinalizeTaskInput[ValidT, StorableRunOutputT], FinalOutputT],
        retry_options: RetryOptions | None = None,
        sleep_ms_before_run: int | None = None,
        queue: str = DEFAULT_QUEUE,
        concurrency_limit: int | None = None,
    ) -> Task[RawInputT, FinalOutputT]: ...

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
            validator=self._validator,
            dump_input=self._dump,
            load_input=self._load,
        )
        self._register(definition)
        return Task(definition)
