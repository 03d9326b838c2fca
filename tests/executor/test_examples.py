"""The usage examples users copy: each shape of task program, end to end."""

from __future__ import annotations

import asyncio
import time

import pydantic

from durable_execution import (
    ChildTask,
    DurableExecutor,
    FinalizeTask,
    FinalizeTaskInput,
    ParentTaskOutput,
    ParentTaskResult,
    RetryOptions,
    Task,
    TaskContext,
)
from durable_execution.storage import DurableStorage

from ._support import RunCounter, all_records, wait_completed


async def test_sync_and_async_tasks(executor: DurableExecutor) -> None:
    @executor.task(id="sync_hello", timeout_ms=1000)
    def sync_hello(ctx: TaskContext, name: str) -> str:
        return f"Hello, {name}!"

    @executor.task(id="async_hello", timeout_ms=1000)
    async def async_hello(ctx: TaskContext, name: str) -> str:
        await asyncio.sleep(0.01)
        return f"Hello, {name}!"

    sync_handle = await executor.enqueue_task(sync_hello, "sync")
    async_handle = await executor.enqueue_task(async_hello, "async")
    assert (await wait_completed(sync_handle)).output == "Hello, sync!"
    assert (await wait_completed(async_handle)).output == "Hello, async!"


async def test_validated_input(executor: DurableExecutor) -> None:
    def validate(value: dict[str, object]) -> str:
        name = value.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError("name must be a non-empty string")
        return name

    def run(ctx: TaskContext, name: str) -> str:
        return f"Hello, {name}!"

    task = executor.validate_input(validate).task(id="validated", timeout_ms=1000, run=run)
    # Annotated: mypy cannot infer a dict literal's type through enqueue_task's generics.
    payload: dict[str, object] = {"name": "world"}
    execution = await wait_completed(await executor.enqueue_task(task, payload))
    assert execution.output == "Hello, world!"


class Greeting(pydantic.BaseModel):
    name: str
    excited: bool = False


async def test_schema_input(executor: DurableExecutor) -> None:
    received: list[object] = []

    def run(ctx: TaskContext, greeting: Greeting) -> str:
        received.append(greeting)
        return f"Hello, {greeting.name}{'!' if greeting.excited else '.'}"

    task = executor.input_schema(Greeting).task(id="schema", timeout_ms=1000, run=run)
    handle = await executor.enqueue_task(task, Greeting(name="world", excited=True))
    execution = await wait_completed(handle)
    assert execution.output == "Hello, world!"
    # The run gets the validated model back; the stored input is its JSON-mode dump.
    assert received == [Greeting(name="world", excited=True)]
    assert execution.run_input == {"name": "world", "excited": True}


async def test_retries_with_backoff(executor: DurableExecutor) -> None:
    started: list[float] = []

    def run(ctx: TaskContext, _: None) -> dict[str, int]:
        started.append(time.monotonic())
        if ctx.attempt < 2:
            raise ValueError(f"attempt {ctx.attempt} failed")
        return {"total_attempts": ctx.attempt + 1}

    task = executor.task(
        id="retrying",
        timeout_ms=1000,
        retry_options=RetryOptions(
            max_attempts=5, base_delay_ms=100, delay_multiplier=1.5, max_delay_ms=1000
        ),
        run=run,
    )
    execution = await wait_completed(await executor.enqueue_task(task))
    assert execution.output == {"total_attempts": 3}
    assert execution.retry_attempts == 2
    assert len(started) == 3
    # 100 ms then 150 ms of backoff (ms-truncated timestamps: a few ms of slack).
    assert started[1] - started[0] >= 0.095
    assert started[2] - started[1] >= 0.145


async def test_run_context(executor: DurableExecutor) -> None:
    @executor.task(id="context", timeout_ms=1000)
    def context(ctx: TaskContext, _: None) -> dict[str, object]:
        return {
            "task_id": ctx.task_id,
            "execution_id": ctx.execution_id,
            "attempt": ctx.attempt,
            "prev_error": ctx.prev_error,
        }

    handle = await executor.enqueue_task(context)
    execution = await wait_completed(handle)
    assert execution.output == {
        "task_id": "context",
        "execution_id": handle.execution_id,
        "attempt": 0,
        "prev_error": None,
    }


async def test_parent_with_parallel_children(executor: DurableExecutor) -> None:
    running = 0
    most_running = 0

    async def child_run(ctx: TaskContext, index: int) -> str:
        nonlocal running, most_running
        running += 1
        most_running = max(most_running, running)
        await asyncio.sleep(0.2)
        running -= 1
        return f"child {index}"

    child = executor.task(id="child", timeout_ms=5000, run=child_run)

    def run_parent(ctx: TaskContext, count: int) -> ParentTaskResult[str]:
        return ParentTaskResult(
            output="parent", children_tasks=[ChildTask(child, i) for i in range(count)]
        )

    parent = executor.parent_task(id="parent", timeout_ms=1000, run_parent=run_parent)
    execution = await wait_completed(await executor.enqueue_task(parent, 3))
    output = execution.output
    assert output.output == "parent"
    assert [c.output for c in output.children_tasks_outputs] == ["child 0", "child 1", "child 2"]
    assert most_running > 1  # the children overlapped: they ran in parallel


async def test_parent_with_finalize(executor: DurableExecutor) -> None:
    def fetch(ctx: TaskContext, url: str) -> int:
        return len(url)

    fetch_task = executor.task(id="fetch", timeout_ms=1000, run=fetch)

    def crawl(ctx: TaskContext, urls: list[str]) -> ParentTaskResult[int]:
        return ParentTaskResult(
            output=len(urls), children_tasks=[ChildTask(fetch_task, url) for url in urls]
        )

    def summarize(ctx: TaskContext, fin: FinalizeTaskInput[list[str], int]) -> dict[str, int]:
        sizes = [c.output for c in fin.children_tasks_outputs]
        assert all(isinstance(size, int) for size in sizes)
        return {"pages": fin.output, "bytes": sum(size for size in sizes if isinstance(size, int))}

    crawler = executor.parent_task(
        id="crawl",
        timeout_ms=1000,
        run_parent=crawl,
        finalize_task=FinalizeTask(id="summarize", timeout_ms=1000, run=summarize),
    )
    execution = await wait_completed(await executor.enqueue_task(crawler, ["a", "bb", "ccc"]))
    assert execution.output == {"pages": 3, "bytes": 6}


async def test_sequential_tasks_chain_outputs(executor: DurableExecutor) -> None:
    runs = RunCounter()

    def to_text(ctx: TaskContext, value: str) -> str:
        runs.hit("to_text")
        return value.strip()

    def parse_number(value: str) -> float:
        return float(value)

    def as_number(ctx: TaskContext, value: float) -> float:
        runs.hit("as_number")
        return value

    def is_big(ctx: TaskContext, value: float) -> bool:
        runs.hit("is_big")
        return value > 10

    step1 = executor.task(id="to_text", timeout_ms=1000, run=to_text)
    step2 = executor.validate_input(parse_number).task(
        id="as_number", timeout_ms=1000, run=as_number
    )
    step3 = executor.task(id="is_big", timeout_ms=1000, run=is_big)
    chain = executor.sequential_tasks(step1, step2, step3)
    assert chain.id.startswith("st_")
    assert len(chain.id) == 19

    big = await wait_completed(await executor.enqueue_task(chain, " 10.5 "))
    assert big.output is True
    assert runs.counts == {"to_text": 1, "as_number": 1, "is_big": 1}
    small = await wait_completed(await executor.enqueue_task(chain, "9.5"))
    assert small.output is False
    assert runs.counts == {"to_text": 2, "as_number": 2, "is_big": 2}


async def test_sequential_chain_costs_nine_executions_for_three_steps(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    def add_one(ctx: TaskContext, value: int) -> int:
        return value + 1

    steps = [executor.task(id=f"add{i}", timeout_ms=1000, run=add_one) for i in range(3)]
    chain = executor.sequential_tasks(steps[0], steps[1], steps[2])
    handle = await executor.enqueue_task(chain, 0)
    assert (await wait_completed(handle)).output == 3
    records = await all_records(storage)
    # The top-level wrapper plus its descendants: 3 wrapper executions per link and the steps.
    in_tree = [
        r
        for r in records
        if r.execution_id == handle.execution_id
        or (r.root_task is not None and r.root_task.execution_id == handle.execution_id)
    ]
    assert len(in_tree) == 9
    assert all(r.status == "completed" for r in in_tree)
    assert sorted(r.task_id for r in in_tree if r.task_id.startswith("add")) == [
        "add0",
        "add1",
        "add2",
    ]


async def test_failing_step_fails_the_chain(executor: DurableExecutor) -> None:
    def ok(ctx: TaskContext, value: int) -> int:
        return value

    def boom(ctx: TaskContext, value: int) -> int:
        raise ValueError("step failed")

    first_fails = executor.sequential_tasks(
        executor.task(id="boom1", timeout_ms=1000, run=boom),
        executor.task(id="ok1", timeout_ms=1000, run=ok),
    )
    execution = await executor.enqueue_task(first_fails, 1)
    finished = await execution.wait_and_get_finished_execution(polling_interval_ms=20)
    assert finished.status == "children_tasks_failed"

    later_fails = executor.sequential_tasks(
        executor.task(id="ok2", timeout_ms=1000, run=ok),
        executor.task(id="boom2", timeout_ms=1000, run=boom),
    )
    execution = await executor.enqueue_task(later_fails, 1)
    finished = await execution.wait_and_get_finished_execution(polling_interval_ms=20)
    assert finished.status == "finalize_task_failed"
    assert "step failed" in finished.finalize_task_error.message


async def test_manual_sequencing_with_nested_finalize_tasks(executor: DurableExecutor) -> None:
    def double(ctx: TaskContext, value: int) -> int:
        return value * 2

    def increment(ctx: TaskContext, value: int) -> int:
        return value + 1

    double_task = executor.task(id="double", timeout_ms=1000, run=double)
    increment_task = executor.task(id="increment", timeout_ms=1000, run=increment)

    def first(ctx: TaskContext, value: int) -> ParentTaskResult[None]:
        return ParentTaskResult(output=None, children_tasks=[ChildTask(double_task, value)])

    def second(ctx: TaskContext, fin: FinalizeTaskInput[int, None]) -> ParentTaskResult[None]:
        doubled = fin.children_tasks_outputs[0].output
        assert isinstance(doubled, int)
        return ParentTaskResult(output=None, children_tasks=[ChildTask(increment_task, doubled)])

    def result(ctx: TaskContext, fin: FinalizeTaskInput[FinalizeTaskInput[int, None], None]) -> int:
        incremented = fin.children_tasks_outputs[0].output
        assert isinstance(incremented, int)
        return incremented

    pipeline = executor.parent_task(
        id="pipeline",
        timeout_ms=1000,
        run_parent=first,
        finalize_task=FinalizeTask(
            id="pipeline_second",
            timeout_ms=1000,
            run_parent=second,
            finalize_task=FinalizeTask(id="pipeline_result", timeout_ms=1000, run=result),
        ),
    )
    execution = await wait_completed(await executor.enqueue_task(pipeline, 20))
    assert execution.output == 41


async def test_two_parent_tasks_chained(executor: DurableExecutor) -> None:
    def upper(ctx: TaskContext, word: str) -> str:
        return word.upper()

    upper_task = executor.task(id="upper", timeout_ms=1000, run=upper)

    def split(ctx: TaskContext, text: str) -> ParentTaskResult[int]:
        words = text.split()
        return ParentTaskResult(
            output=len(words), children_tasks=[ChildTask(upper_task, w) for w in words]
        )

    def join(ctx: TaskContext, fin: FinalizeTaskInput[str, int]) -> str:
        return " ".join(str(c.output) for c in fin.children_tasks_outputs)

    shout = executor.parent_task(
        id="shout",
        timeout_ms=1000,
        run_parent=split,
        finalize_task=FinalizeTask(id="shout_join", timeout_ms=1000, run=join),
    )

    def length(ctx: TaskContext, word: str) -> int:
        return len(word)

    length_task = executor.task(id="length", timeout_ms=1000, run=length)

    def measure(ctx: TaskContext, text: str) -> ParentTaskResult[str]:
        return ParentTaskResult(
            output=text, children_tasks=[ChildTask(length_task, w) for w in text.split()]
        )

    measurer = executor.parent_task(id="measure", timeout_ms=1000, run_parent=measure)
    chain = executor.sequential_tasks(shout, measurer)
    execution = await wait_completed(await executor.enqueue_task(chain, "hello big world"))
    output = execution.output
    assert isinstance(output, ParentTaskOutput)
    assert output.output == "HELLO BIG WORLD"
    assert [c.output for c in output.children_tasks_outputs] == [5, 3, 5]


async def test_recursive_parent(executor: DurableExecutor) -> None:
    recursive: Task[int, int]

    def run_parent(ctx: TaskContext, index: int) -> ParentTaskResult[int]:
        children = [ChildTask(recursive, index + 1)] if index < 9 else []
        return ParentTaskResult(output=1, children_tasks=children)

    def total(ctx: TaskContext, fin: FinalizeTaskInput[int, int]) -> int:
        below = [c.output for c in fin.children_tasks_outputs]
        return fin.output + sum(value for value in below if isinstance(value, int))

    recursive = executor.parent_task(
        id="recursive",
        timeout_ms=1000,
        run_parent=run_parent,
        finalize_task=FinalizeTask(id="recursive_total", timeout_ms=1000, run=total),
    )
    execution = await wait_completed(await executor.enqueue_task(recursive, 0))
    assert execution.output == 10


async def test_polling_parent(executor: DurableExecutor) -> None:
    """A parent that re-enqueues itself every 100 ms until a value appears."""
    appears_after_s = 1.0
    began = time.monotonic()

    def current_value() -> int | None:
        return 10 if time.monotonic() - began >= appears_after_s else None

    polling: Task[int, dict[str, int | None]]

    def poll(ctx: TaskContext, count: int) -> ParentTaskResult[dict[str, int | None]]:
        value = current_value()
        if value is not None:
            return ParentTaskResult(output={"count": count + 1, "value": value})
        return ParentTaskResult(
            output={"count": count + 1, "value": None},
            children_tasks=[ChildTask(polling, count + 1)],
        )

    def settle(
        ctx: TaskContext, fin: FinalizeTaskInput[int, dict[str, int | None]]
    ) -> dict[str, int | None]:
        if fin.output["value"] is not None:
            return fin.output
        deeper = fin.children_tasks_outputs[0].output
        assert isinstance(deeper, dict)
        return deeper

    polling = executor.parent_task(
        id="polling",
        timeout_ms=1000,
        sleep_ms_before_run=100,
        run_parent=poll,
        finalize_task=FinalizeTask(id="polling_settle", timeout_ms=1000, run=settle),
    )
    execution = await wait_completed(await executor.enqueue_task(polling, 0))
    result = execution.output
    assert result["value"] == 10
    count = result["count"]
    assert count is not None
    # Each poll waits at least its 100 ms sleep, so at most ~1000 / 100 polls fit before the
    # value appears (one more finds it); at least one poll happens before it does.
    assert 2 <= count <= 12, count
