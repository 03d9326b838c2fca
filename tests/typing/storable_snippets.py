# ruff: noqa: E501 - expectation markers must stay on the line they describe, however long
"""Type-test snippets: children's inputs and values the serializer cannot store.

Run by test_public_api_types.py (same markers). ``CORRECT`` must pass ``mypy --strict`` with no
message but its notes; each snippet of ``MISUSES`` is a mistake the runtime would refuse (or, for
children, would have stored for a task that cannot take it), which mypy must refuse first.
"""

from __future__ import annotations

from typing import Final

CORRECT: Final[dict[str, str]] = {
    "storable_and_children_ok": """
        import datetime
        from decimal import Decimal
        from typing import Any, TypedDict

        import pydantic

        from durable_execution import (
            AnyChildTask,
            ChildTask,
            DurableExecutor,
            FinalizeTask,
            FinalizeTaskInput,
            InMemoryStorage,
            ParentTaskResult,
            TaskContext,
        )

        executor = DurableExecutor(InMemoryStorage())

        class Order(TypedDict):
            sku: str
            quantity: int

        def take_int(ctx: TaskContext, value: int) -> str:
            return str(value)

        def take_order(ctx: TaskContext, order: Order) -> dict[str, list[int]]:
            return {order["sku"]: [order["quantity"]]}

        def take_rich(
            ctx: TaskContext, value: tuple[datetime.datetime, Decimal, bytes, set[int] | None]
        ) -> list[tuple[str, float]]:
            return []

        def take_anything(ctx: TaskContext, value: object) -> None:
            return None

        async def take_async(ctx: TaskContext, value: list[str]) -> dict[int, str]:
            return dict(enumerate(value))

        by_int = executor.task(id="int", timeout_ms=1000, run=take_int)
        by_order = executor.task(id="order", timeout_ms=1000, run=take_order)
        executor.task(id="rich", timeout_ms=1000, run=take_rich)
        executor.task(id="anything", timeout_ms=1000, run=take_anything)
        reveal_type(executor.task(id="async", timeout_ms=1000, run=take_async))  # N: Revealed type is "durable_execution.tasks.Task[list[str], dict[int, str]]"

        @executor.task(id="decorated", timeout_ms=1000)
        async def decorated(ctx: TaskContext, value: dict[str, Any]) -> None:
            return None

        def run_parent(ctx: TaskContext, count: int) -> ParentTaskResult[int]:
            # Heterogeneous children: inline, from a comprehension, or in an annotated list.
            children: list[AnyChildTask] = [ChildTask(by_int, i) for i in range(count)]
            children.append(ChildTask(by_order, Order(sku="a", quantity=1)))
            children.append(ChildTask[Order](by_order, {"sku": "b", "quantity": 2}))
            mixed = [ChildTask(by_int, 1), ChildTask(by_order, Order(sku="c", quantity=3))]
            reveal_type(mixed)  # N: Revealed type is "list[durable_execution.tasks.ChildTask[object]]"
            return ParentTaskResult(
                output=count,
                children_tasks=[ChildTask(by_int, 1), ChildTask(by_order, Order(sku="d", quantity=4)), *children, *mixed],
            )

        def finalize(ctx: TaskContext, fin: FinalizeTaskInput[int, int]) -> list[int]:
            return [fin.input, fin.output]

        executor.parent_task(
            id="parent",
            timeout_ms=1000,
            run_parent=run_parent,
            finalize_task=FinalizeTask(id="finalize", timeout_ms=1000, run=finalize),
        )

        class Person(pydantic.BaseModel):
            name: str

        def greet(ctx: TaskContext, person: Person) -> str:
            return person.name

        # A generic helper bounds its type variables as the executor does.
        from collections.abc import Callable
        from typing import TypeVar

        from durable_execution import Serializable, Task

        In = TypeVar("In", bound=Serializable)
        Out = TypeVar("Out", bound=Serializable)

        def register(id: str, run: Callable[[TaskContext, In], Out]) -> Task[In, Out]:
            return executor.task(id=id, timeout_ms=1000, run=run)

        reveal_type(register("helper", take_int))  # N: Revealed type is "durable_execution.tasks.Task[int, str]"

        # input_schema stores the model's JSON dump: a model input is fine there.
        executor.input_schema(Person).task(id="schema", timeout_ms=1000, run=greet)
        executor.validate_input(lambda raw: int(raw)).task(id="validated", timeout_ms=1000, run=take_int)
    """,
}

MISUSES: Final[dict[str, str]] = {
    "child_inputs_checked_inline": """
        from durable_execution import (
            AnyChildTask,
            ChildTask,
            DurableExecutor,
            InMemoryStorage,
            ParentTaskResult,
            TaskContext,
        )

        executor = DurableExecutor(InMemoryStorage())

        def take_int(ctx: TaskContext, value: int) -> str:
            return str(value)

        by_int = executor.task(id="int", timeout_ms=1000, run=take_int)

        def inline(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
            return ParentTaskResult(output=None, children_tasks=[ChildTask(by_int, "x")])  # E[misc]: Cannot infer value of type parameter "InputT_co" of "ChildTask"

        def comprehension(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
            return ParentTaskResult(
                output=None,
                children_tasks=[ChildTask(by_int, str(i)) for i in range(3)],  # E[misc]: Cannot infer value of type parameter "InputT_co" of "ChildTask"
            )

        def in_a_tuple(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
            return ParentTaskResult(None, (ChildTask(by_int, 1.5),))  # E[misc]: Cannot infer value of type parameter "InputT_co" of "ChildTask"

        def appended(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
            children: list[AnyChildTask] = []
            children.append(ChildTask(by_int, None))  # E[misc]: Cannot infer value of type parameter "InputT_co" of "ChildTask"
            return ParentTaskResult(None, children)

        def not_a_child(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
            return ParentTaskResult(None, [by_int])  # E[list-item]: List item 0 has incompatible type "Task[int, str]"; expected "AnyChildTask"
    """,
    "unstorable_inputs": """
        from dataclasses import dataclass

        import pydantic

        from durable_execution import DurableExecutor, InMemoryStorage, ParentTaskResult, TaskContext

        executor = DurableExecutor(InMemoryStorage())

        @dataclass
        class Point:
            x: int

        class Person(pydantic.BaseModel):
            name: str

        def take_point(ctx: TaskContext, point: Point) -> int:
            return point.x

        def take_points(ctx: TaskContext, points: list[Point]) -> int:
            return len(points)

        def take_person(ctx: TaskContext, person: Person) -> str:
            return person.name

        def parent_of_point(ctx: TaskContext, point: Point) -> ParentTaskResult[None]:
            return ParentTaskResult(output=None)

        def to_point(raw: int) -> Point:
            return Point(raw)

        executor.task(id="point", timeout_ms=1000, run=take_point)  # E[type-var]: Value of type variable "StorableInputT" of "task" of "DurableExecutor" cannot be "Point"
        executor.task(id="points", timeout_ms=1000, run=take_points)  # E[type-var]: Value of type variable "StorableInputT" of "task" of "DurableExecutor" cannot be "list[Point]"
        executor.task(id="person", timeout_ms=1000, run=take_person)  # E[type-var]: Value of type variable "StorableInputT" of "task" of "DurableExecutor" cannot be "Person"
        executor.parent_task(id="parent", timeout_ms=1000, run_parent=parent_of_point)  # E[type-var]: Value of type variable "StorableInputT" of "parent_task" of "DurableExecutor" cannot be "Point"
        executor.validate_input(to_point)  # E[type-var]: Value of type variable "StorableValidT" of "validate_input" of "DurableExecutor" cannot be "Point"

        from collections.abc import Callable
        from typing import TypeVar

        from durable_execution import Task

        In = TypeVar("In")  # unbounded: could be a Point

        def register(id: str, run: Callable[[TaskContext, In], int]) -> Task[In, int]:
            return executor.task(id=id, timeout_ms=1000, run=run)  # E[type-var]: Value of type variable "StorableInputT" of "task" of "DurableExecutor" cannot be "In"

        @executor.task(id="decorated", timeout_ms=1000)  # E[type-var]: Value of type variable "StorableInputT" of "__call__" of "TaskDecorator" cannot be "Point"
        def decorated(ctx: TaskContext, point: Point) -> None:
            return None
    """,
    "unstorable_outputs": """
        from dataclasses import dataclass

        from durable_execution import (
            DurableExecutor,
            FinalizeTask,
            FinalizeTaskInput,
            InMemoryStorage,
            ParentTaskResult,
            TaskContext,
        )

        executor = DurableExecutor(InMemoryStorage())

        @dataclass
        class Point:
            x: int

        def make_point(ctx: TaskContext, x: int) -> Point:
            return Point(x)

        def parent_output(ctx: TaskContext, x: int) -> ParentTaskResult[Point]:
            return ParentTaskResult(output=Point(x))

        def finalize(ctx: TaskContext, fin: FinalizeTaskInput[int, None]) -> Point:
            return Point(fin.input)

        def run_parent(ctx: TaskContext, x: int) -> ParentTaskResult[None]:
            return ParentTaskResult(output=None)

        executor.task(id="point", timeout_ms=1000, run=make_point)  # E[type-var]: Value of type variable "StorableOutputT" of "task" of "DurableExecutor" cannot be "Point"
        executor.parent_task(id="parent", timeout_ms=1000, run_parent=parent_output)  # E[type-var]: Value of type variable "StorableRunOutputT" of "parent_task" of "DurableExecutor" cannot be "Point"
        FinalizeTask(id="finalize", timeout_ms=1000, run=finalize)  # E[type-var]: Value of type variable "StorableOutputT" of "FinalizeTask" cannot be "Point"
    """,
}
