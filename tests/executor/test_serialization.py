"""Values survive the trip through storage; those that cannot fail clearly and store nothing."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import pytest

from durable_execution import (
    DurableExecutionError,
    DurableExecutor,
    JsonSerializer,
    RetryOptions,
    TaskContext,
)
from durable_execution.model import FINISHED_STATUSES
from durable_execution.storage import DurableStorage

from ._support import (
    MakeExecutor,
    RunCounter,
    all_records,
    eventually,
    get_record,
    wait_completed,
    wait_finished,
)

RICH_VALUE: dict[str, object] = {
    "when": datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=UTC),
    "when_elsewhere": datetime(2024, 1, 1, 8, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    "day": date(1999, 12, 31),
    "amount": Decimal("12.50"),
    "tiny": Decimal("1E-30"),
    "id": UUID("12345678-1234-5678-1234-567812345678"),
    "raw": b"\x00\xffbytes",
    "pair": (1, "a", (2.5, None)),
    "tags": {"a", "b"},
    "numbers": [1, 2.25, -3, True, False, None],
    "nested": {"list_of_tuples": [(1, 2), (3, 4)], "unicode": "ünïcødé ✓"},
    "int_keys": {1: "one", 2: "two"},
    "empty": {},
}


async def test_rich_values_round_trip_through_a_task(executor: DurableExecutor) -> None:
    received: list[object] = []

    def run(ctx: TaskContext, value: dict[str, object]) -> dict[str, object]:
        received.append(value)
        return value

    task = executor.task(id="test", timeout_ms=1000, run=run)
    execution = await wait_completed(await executor.enqueue_task(task, RICH_VALUE))
    assert received == [RICH_VALUE]
    assert execution.run_input == RICH_VALUE
    assert execution.output == RICH_VALUE
    output = execution.output
    # Equality alone would let a tuple come back as a list; the types must survive too.
    for key, value in RICH_VALUE.items():
        assert type(output[key]) is type(value), key
    pair = output["pair"]
    assert isinstance(pair, tuple)
    assert type(pair[2]) is tuple
    when_elsewhere = output["when_elsewhere"]
    assert isinstance(when_elsewhere, datetime)
    assert when_elsewhere.utcoffset() == timedelta(hours=5, minutes=30)


async def test_unserializable_input_fails_enqueue_and_stores_nothing(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    runs = RunCounter()

    def run(ctx: TaskContext, value: object) -> None:
        runs.hit("test")

    task = executor.task(id="test", timeout_ms=1000, run=run)
    with pytest.raises(DurableExecutionError) as raised:
        await executor.enqueue_task(task, {"handle": object()})
    assert str(raised.value).startswith("Error serializing the input of task test: ")
    assert raised.value.is_retryable is False
    assert await all_records(storage) == []
    assert runs.total() == 0


async def test_unserializable_output_fails_without_retry(executor: DurableExecutor) -> None:
    runs = RunCounter()

    def run(ctx: TaskContext, _: None) -> object:
        runs.hit("test")
        return object()

    # mypy refuses an output type the serializer cannot store: this checks the run-time refusal.
    task = executor.task(  # type: ignore[type-var]
        id="test", timeout_ms=1000, retry_options=RetryOptions(max_attempts=3), run=run
    )
    execution = await wait_finished(await executor.enqueue_task(task))
    assert execution.status == "failed"
    assert execution.error.message.startswith("Error serializing the output of task test: ")
    assert execution.error.is_retryable is False
    assert runs["test"] == 1


async def test_oversize_input_is_refused(
    make_executor: MakeExecutor, storage: DurableStorage
) -> None:
    executor = await make_executor(max_serialized_size_bytes=1000)

    def run(ctx: TaskContext, value: str) -> int:
        return len(value)

    task = executor.task(id="test", timeout_ms=1000, run=run)
    assert (await wait_completed(await executor.enqueue_task(task, "x" * 500))).output == 500
    with pytest.raises(DurableExecutionError) as raised:
        await executor.enqueue_task(task, "x" * 2000)
    assert raised.value.is_retryable is False
    assert "1000" in str(raised.value)
    assert len(await all_records(storage)) == 1


async def test_oversize_output_fails_the_execution(make_executor: MakeExecutor) -> None:
    executor = await make_executor(max_serialized_size_bytes=1000)

    def run(ctx: TaskContext, size: int) -> str:
        return "y" * size

    task = executor.task(
        id="test", timeout_ms=1000, retry_options=RetryOptions(max_attempts=2), run=run
    )
    execution = await wait_finished(await executor.enqueue_task(task, 5000))
    assert execution.status == "failed"
    assert execution.error.is_retryable is False
    assert "1000" in execution.error.message


class _PrefixedJson:
    """A custom serializer: the default one behind a marker, to prove it is really used."""

    def __init__(self) -> None:
        self.inner = JsonSerializer()
        self.serialized = 0

    def serialize(self, value: object) -> str:
        self.serialized += 1
        return "custom:" + self.inner.serialize(value)

    def deserialize(self, data: str) -> object:
        if not data.startswith("custom:"):
            raise ValueError(f"not mine: {data[:20]}")
        return self.inner.deserialize(data.removeprefix("custom:"))


async def test_custom_serializer_is_used(
    make_executor: MakeExecutor, storage: DurableStorage
) -> None:
    serializer = _PrefixedJson()
    executor = await make_executor(serializer=serializer)

    def run(ctx: TaskContext, value: list[int]) -> int:
        return sum(value)

    task = executor.task(id="test", timeout_ms=1000, run=run)
    execution = await wait_completed(await executor.enqueue_task(task, [1, 2, 3]))
    assert execution.output == 6
    [record] = await all_records(storage)
    assert record.run_input.startswith("custom:")
    assert json.loads(record.run_input.removeprefix("custom:")) == [1, 2, 3]
    assert record.output is not None
    assert record.output.startswith("custom:")
    assert serializer.serialized >= 2


class _BrokenDeserializer(_PrefixedJson):
    def deserialize(self, data: str) -> object:
        raise ValueError("cannot read this")


async def test_deserialization_failure_fails_the_execution(
    make_executor: MakeExecutor, storage: DurableStorage
) -> None:
    executor = await make_executor(serializer=_BrokenDeserializer())
    runs = RunCounter()

    def run(ctx: TaskContext, value: int) -> int:
        runs.hit("test")
        return value

    task = executor.task(
        id="test", timeout_ms=1000, retry_options=RetryOptions(max_attempts=3), run=run
    )
    handle = await executor.enqueue_task(task, 1)

    async def finished() -> bool:
        return (await get_record(storage, handle.execution_id)).status in FINISHED_STATUSES

    # The public object needs the input deserialized too, so read the stored row instead.
    await eventually(finished, what="execution finished")
    record = await get_record(storage, handle.execution_id)
    assert record.status == "failed"
    assert record.error is not None
    assert record.error.message == "Error deserializing value: cannot read this"
    assert record.error.is_retryable is False
    assert record.retry_attempts == 0
    assert runs["test"] == 0
    with pytest.raises(
        DurableExecutionError, match=r"^Error deserializing value: cannot read this"
    ):
        await handle.get_execution()
