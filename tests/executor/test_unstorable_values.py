"""Values the serializer cannot store are refused before anything is stored, naming the type.

mypy refuses most of them at registration (see tests/typing); these are the run-time refusals
behind it: for code that is not type-checked, for what types cannot say (an enum member is a
``str`` or an ``int`` to mypy), and for children a parent returns, whose inputs are serialized
only once the parent ran. An enum member never arrives as a plain ``str``: it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any, NamedTuple, cast

import pytest

from durable_execution import (
    ChildTask,
    DurableExecutionError,
    DurableExecutor,
    ParentTaskResult,
    Task,
    TaskContext,
)
from durable_execution.storage import DurableStorage

from ._support import RunCounter, all_records, wait_finished


@dataclass(frozen=True)
class Point:
    x: int
    y: int


class Color(StrEnum):
    RED = "red"


class Level(IntEnum):
    HIGH = 3


class Pair(NamedTuple):
    left: int
    right: int


def _untyped(task: Task[Any, Any]) -> Task[object, object]:
    """The task as code that is not type-checked sees it: any input goes."""
    return cast("Task[object, object]", task)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (Point(1, 2), "Object of type Point is not serializable"),
        ({"points": [Point(1, 2)]}, "Object of type Point is not serializable (at ['points'][0])"),
        (Color.RED, "Color.RED is an enum member, which is not serializable (it would come back"),
        ({"level": Level.HIGH}, "Level.HIGH is an enum member"),
        (Pair(1, 2), "Pair is a named tuple, which is not serializable"),
    ],
    ids=["dataclass", "nested dataclass", "StrEnum", "IntEnum in a dict", "NamedTuple"],
)
async def test_enqueue_refuses_unstorable_input_and_stores_nothing(
    executor: DurableExecutor, storage: DurableStorage, value: object, message: str
) -> None:
    runs = RunCounter()

    def run(ctx: TaskContext, value: object) -> None:
        runs.hit("test")

    task = executor.task(id="test", timeout_ms=1000, run=run)
    with pytest.raises(DurableExecutionError) as raised:
        await executor.enqueue_task(_untyped(task), value)
    assert str(raised.value).startswith("Error serializing the input of task test: ")
    assert message in str(raised.value)
    assert raised.value.is_retryable is False
    with pytest.raises(DurableExecutionError):
        await executor.enqueue_tasks(_untyped(task), [1, value])
    assert await all_records(storage) == []
    assert runs.total() == 0


async def test_enum_output_fails_the_attempt_without_retry(executor: DurableExecutor) -> None:
    runs = RunCounter()

    def run(ctx: TaskContext, name: str) -> str:
        runs.hit("test")
        return Color(name)  # a str to mypy: only the serializer can refuse it

    task = executor.task(id="test", timeout_ms=1000, run=run)
    execution = await wait_finished(await executor.enqueue_task(task, "red"))
    assert execution.status == "failed"
    assert execution.error.message.startswith(
        "Error serializing the output of task test: Color.RED is an enum member"
    )
    assert execution.error.is_retryable is False
    assert runs["test"] == 1


async def test_enum_value_round_trips_as_plain_value(executor: DurableExecutor) -> None:
    """What the refusal asks for: store ``.value``, rebuild the member in the task."""

    def run(ctx: TaskContext, name: str) -> str:
        return Color(name).value

    task = executor.task(id="test", timeout_ms=1000, run=run)
    execution = await wait_finished(await executor.enqueue_task(task, Color.RED.value))
    assert execution.status == "completed"
    assert type(execution.output) is str
    assert Color(execution.output) is Color.RED


async def test_child_with_unstorable_input_fails_the_parent_attempt(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    runs = RunCounter()

    def child_run(ctx: TaskContext, value: int) -> int:
        runs.hit("child")
        return value

    child = executor.task(id="child", timeout_ms=1000, run=child_run)

    def run_parent(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
        runs.hit("parent")
        return ParentTaskResult(
            output=None,
            children_tasks=[ChildTask(child, 1), ChildTask(_untyped(child), Point(1, 2))],
        )

    parent = executor.parent_task(id="parent", timeout_ms=1000, run_parent=run_parent)
    execution = await wait_finished(await executor.enqueue_task(parent))
    assert execution.status == "failed"
    assert execution.error.message == (
        "Error serializing the input of child 1 (task child) of task parent: Object of type"
        " Point is not serializable"
    )
    assert execution.error.is_retryable is False
    assert runs["parent"] == 1
    # Neither child was stored (not even the valid first one), and the parent kept no output.
    records = await all_records(storage)
    assert [record.task_id for record in records] == ["parent"]
    assert records[0].children_tasks in (None, ())
    assert records[0].run_output is None
    assert runs["child"] == 0
