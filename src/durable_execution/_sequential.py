"""Sequential chains: the wrapper tasks behind ``executor.sequential_tasks``, under stable ids.

A chain ``a → b → c`` is a parent task whose child is ``a`` and whose finalize task starts the
rest of the chain (``b → c``, itself a chain) on ``a``'s output; a second finalize returns the
rest's output. That is three wrapper executions per link, as in the reference.

Every id is derived, never random: the chain's own id is the user's ``id`` or a hash of the step
ids, and the internal wrappers are named after it. Executions refer to tasks by id, so a chain
enqueued by one process must be found under the same id by a worker in another process, and by
the worker that takes over after a crash; a random id made both fail with "Task … not found".

Naming, for a chain ``C`` of ``n`` steps (``B`` is ``C`` with the ``st_`` prefix, if it lacks
one): ``C`` itself, its finalize tasks ``B_finalize_1`` and ``B_finalize_2``, and the rest of the
chain from step ``k`` as ``B_from_k`` (with finalize tasks ``B_from_k_finalize_1`` and ``_2``).
The ``st_`` prefix marks the machinery of a chain, which the worker's task list leaves out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from durable_execution._registry import TaskRegistry, make_definition
from durable_execution.errors import DurableExecutionError, DurableExecutionNotFoundError
from durable_execution.ids import (
    MAX_ID_LENGTH,
    SEQUENTIAL_TASK_ID_PREFIX,
    sequential_task_id,
    validate_id,
)
from durable_execution.payloads import FinalizeTaskInput
from durable_execution.tasks import (
    ChildTask,
    FinalizeTask,
    ParentTaskResult,
    Task,
    TaskContext,
    TaskDefinition,
)

SEQUENTIAL_STEP_TIMEOUT_MS: Final = 1000


class SequentialChains:
    """The chains registered with one executor (id → step ids) and how a new one is built.

    Registering the same steps under the same id again returns the chain already registered:
    without an explicit id the id is derived from the steps, so the user never chose it, and two
    places in an application that compose the same steps mean the same chain — refusing that
    would be an error about a name the user never wrote. The same id for *different* steps is
    refused, since executions stored under that id would run whichever chain a process happened
    to register.
    """

    def __init__(self, registry: TaskRegistry, register: Callable[[TaskDefinition], None]) -> None:
        self._registry = registry
        self._register = register
        self._steps: dict[str, tuple[str, ...]] = {}

    def chain(self, tasks: Sequence[Task[Any, Any]], chain_id: str | None) -> Task[Any, Any]:
        if not tasks:
            raise DurableExecutionError("No tasks provided", is_retryable=False)
        for task in tasks:
            if not isinstance(task, Task) or self._registry.get(task.id) is None:
                raise DurableExecutionNotFoundError(
                    f"Task {getattr(task, 'id', task)} not found. Register it with this executor"
                    " before using it in sequential_tasks"
                )
        step_ids = tuple(task.id for task in tasks)
        if len(tasks) == 1:
            if chain_id is not None:
                raise DurableExecutionError(
                    f"sequential_tasks got one task ({step_ids[0]}) and id {chain_id!r}: a chain"
                    " of one task is that task itself, so it cannot take another id. Pass it"
                    " without id, or use the task directly",
                    is_retryable=False,
                )
            return tasks[0]
        if chain_id is None:
            chain_id = sequential_task_id(step_ids)
        else:
            _check_chain_id(chain_id)
        known = self._steps.get(chain_id)
        if known is not None:
            if known != step_ids:
                raise DurableExecutionError(
                    f"Sequential chain {chain_id} is already registered with steps"
                    f" {_shown(known)}; it cannot also name steps {_shown(step_ids)}. Give"
                    " each chain its own id",
                    is_retryable=False,
                )
            existing = self._registry.get(chain_id)
            assert existing is not None  # registered together with self._steps[chain_id]
            return Task(existing)
        links = _links(chain_id, tasks)
        _check_free(self._registry, chain_id, links)
        for link in reversed(links):  # innermost first: no chain is ever half registered
            self._register(link)
        self._steps[chain_id] = step_ids
        return Task(links[0])


def _shown(step_ids: Sequence[str]) -> str:
    return " → ".join(step_ids)


def _check_chain_id(chain_id: object) -> None:
    if not isinstance(chain_id, str):
        raise DurableExecutionError(
            f"Sequential chain id must be a str, got {type(chain_id).__name__}",
            is_retryable=False,
        )
    try:
        validate_id(chain_id)
    except DurableExecutionError as error:
        raise DurableExecutionError(
            f"Invalid sequential chain id {chain_id!r}: {error.message}", is_retryable=False
        ) from None


def _internal_base(chain_id: str) -> str:
    if chain_id.startswith(SEQUENTIAL_TASK_ID_PREFIX):
        return chain_id
    return SEQUENTIAL_TASK_ID_PREFIX + chain_id


def _links(chain_id: str, tasks: Sequence[Task[Any, Any]]) -> list[TaskDefinition]:
    """The wrapper definitions of the chain, outermost first (link ``k`` starts at step k+1)."""
    base = _internal_base(chain_id)
    ids = [chain_id] + [f"{base}_from_{k + 1}" for k in range(1, len(tasks) - 1)]
    longest = f"{base if len(ids) == 1 else ids[-1]}_finalize_2"
    if len(longest) > MAX_ID_LENGTH:
        room = MAX_ID_LENGTH - (len(longest) - len(chain_id))
        raise DurableExecutionError(
            f"Sequential chain id {chain_id!r} is too long for a chain of {len(tasks)} steps:"
            f" its internal task ids (such as {longest}) would exceed {MAX_ID_LENGTH}"
            f" characters. Use at most {room} characters",
            is_retryable=False,
        )
    links: list[TaskDefinition] = []
    rest: Task[Any, Any] = tasks[-1]
    for k in range(len(tasks) - 2, -1, -1):
        internal = base if k == 0 else ids[k]
        definition = _link(ids[k], internal, tasks[k], rest)
        links.append(definition)
        rest = Task(definition)
    links.reverse()
    return links


def _link(
    link_id: str, internal: str, first: Task[Any, Any], rest: Task[Any, Any]
) -> TaskDefinition:
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
    ) -> Any:  # Any: the last step's output, stored once already, passes through
        return finalize_input.children_tasks_outputs[0].output

    return make_definition(
        id=link_id,
        timeout_ms=SEQUENTIAL_STEP_TIMEOUT_MS,
        run=run_first,
        shape="parent",
        finalize_task=FinalizeTask(
            id=f"{internal}_finalize_1",
            timeout_ms=SEQUENTIAL_STEP_TIMEOUT_MS,
            run_parent=run_rest,
            finalize_task=FinalizeTask(
                id=f"{internal}_finalize_2",
                timeout_ms=SEQUENTIAL_STEP_TIMEOUT_MS,
                run=last_output,
            ),
        ),
    )


def _check_free(registry: TaskRegistry, chain_id: str, links: Sequence[TaskDefinition]) -> None:
    """Refuse the whole chain, before registering any of it, if any of its ids is taken."""
    for link in links:
        current: TaskDefinition | None = link
        while current is not None:
            if registry.get(current.id) is not None:
                which = "the" if current.id == chain_id else "its internal"
                raise DurableExecutionError(
                    f"Cannot register sequential chain {chain_id}: {which} task id {current.id}"
                    " is already taken by another task. Task ids, chain ids and the chains'"
                    " internal st_ ids included, must be unique within an executor",
                    is_retryable=False,
                )
            current = current.finalize
