"""The seed workload (the demo's), runnable on any storage with every value checked.

Used by the demo (``python -m durable_execution.demo``) and meant for the benchmark and the
storage tests too: :func:`run_seed_workload` takes the storage and executor options and returns a
:class:`WorkloadReport` that lists every check, so callers decide how to present failures.

The workload: a 16-execution tree (``root`` with children ``a`` — itself a parent of ``a1..a3``
with a finalize — and a 3-step sequential chain ``b1 → b2 → b3``, plus ``root``'s finalize), 100
concurrent tasks ``t0..t99``, a task that succeeds on its third attempt, a failing task, a parent
with a failing child, a parent with a failing finalize task, and a parent with 250 children.

A caller that wants to show the run live passes a :class:`WorkloadProgress`; the steps it hears
about are :data:`STEPS`, in that order.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, TypedDict, TypeVar

from durable_execution._trees import load_records
from durable_execution.errors import DurableExecutionError
from durable_execution.executions import FinishedTaskExecution
from durable_execution.executor import DurableExecutor
from durable_execution.handle import TaskHandle
from durable_execution.model import RetryOptions
from durable_execution.payloads import FinalizeTaskInput, ParentTaskOutput
from durable_execution.storage.types import (
    DurableStorage,
)
from durable_execution.tasks import ChildTask, FinalizeTask, ParentTaskResult, Task, TaskContext

OutputT = TypeVar("OutputT")

TIMEOUT_MS = 1000
CONCURRENT_TASKS = 100
CONCURRENT_CHILDREN = 250


class Named(TypedDict):
    name: str


@dataclass(frozen=True, slots=True)
class Step:
    key: str
    description: str
    total: int  # how many times the step advances before it is done


STEPS: Final = (
    Step("tree", "task tree (16 executions)", 1),
    Step("concurrent", f"{CONCURRENT_TASKS} concurrent tasks", CONCURRENT_TASKS),
    Step("retry", "retried task (3 attempts)", 1),
    Step("failing", "failing task", 1),
    Step("failing_child", "parent with a failing child", 1),
    Step("failing_finalize", "parent with a failing finalize", 1),
    Step("children", f"parent with {CONCURRENT_CHILDREN} children", CONCURRENT_CHILDREN),
)


class WorkloadProgress(Protocol):
    """Hears how far the workload got; called on the event loop, so it must not block."""

    def step_started(self, key: str) -> None: ...

    def advance(self, key: str) -> None: ...


class _NoProgress:
    def step_started(self, key: str) -> None:
        pass

    def advance(self, key: str) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass(slots=True)
class WorkloadReport:
    checks: list[Check] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    executions: int = 0
    wall_time_s: float = 0.0
    # The top-level executions the workload enqueued, in order: (task id, execution id).
    enqueued: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    def expect(self, name: str, actual: object, expected: object) -> None:
        ok = actual == expected
        detail = "" if ok else f"expected {expected!r}, got {actual!r}"
        self.checks.append(Check(name, ok, detail))

    def expect_true(self, name: str, condition: bool, detail: str = "") -> None:
        self.checks.append(Check(name, condition, "" if condition else detail))


def _check_times(report: WorkloadReport, name: str, execution: FinishedTaskExecution[Any]) -> None:
    started_at = execution.started_at
    finished_at = execution.finished_at
    report.expect_true(
        f"{name}: finished_at >= started_at",
        started_at is not None and finished_at >= started_at,
        f"started_at={started_at!r}, finished_at={finished_at!r}",
    )


def _completed_output(
    report: WorkloadReport, name: str, execution: FinishedTaskExecution[Any]
) -> Any:
    """The output if ``execution`` completed (recording the check either way)."""
    report.expect(f"{name}: status", execution.status, "completed")
    _check_times(report, name, execution)
    return execution.output if execution.status == "completed" else None


async def run_seed_workload(
    storage: DurableStorage, *, progress: WorkloadProgress | None = None, **executor_options: Any
) -> WorkloadReport:  # Any: forwarded verbatim to DurableExecutor's keyword options
    """Run the whole workload on ``storage`` with a fresh executor; never raises on mismatches."""
    report = WorkloadReport()
    started = time.perf_counter()
    executor = DurableExecutor(storage, **executor_options)
    steps = progress or _NoProgress()
    async with executor:
        await _tree_and_concurrent(executor, storage, report, steps)
        await _retries_and_failures(executor, report, steps)
        await _many_children(executor, report, steps)
    report.wall_time_s = time.perf_counter() - started

    # Only this run's executions (a storage may hold earlier runs' too): the trees it enqueued.
    roots = sorted({execution_id for _, execution_id in report.enqueued})
    statuses = [record.status for record in await load_records(storage, roots)]
    report.statuses.update(statuses)
    report.executions = len(statuses)
    return report


def _greeting(who: str) -> Callable[[TaskContext, Named], str]:
    def greet(ctx: TaskContext, value: Named) -> str:
        return f"Hello from {who}, {value['name']}!"

    return greet


async def _tree_and_concurrent(
    executor: DurableExecutor,
    storage: DurableStorage,
    report: WorkloadReport,
    progress: WorkloadProgress,
) -> None:
    async def b1(ctx: TaskContext, value: Named) -> dict[str, str]:
        return {"name": value["name"], "taskB1Output": f"Hello from task B1, {value['name']}!"}

    async def b2(ctx: TaskContext, value: dict[str, str]) -> dict[str, str]:
        return {**value, "taskB2Output": f"Hello from task B2, {value['name']}!"}

    async def b3(ctx: TaskContext, value: dict[str, str]) -> dict[str, str]:
        return {
            "taskB1Output": value["taskB1Output"],
            "taskB2Output": value["taskB2Output"],
            "taskB3Output": f"Hello from task B3, {value['name']}!",
        }

    task_b = executor.sequential_tasks(
        executor.task(id="b1", timeout_ms=TIMEOUT_MS, run=b1),
        executor.task(id="b2", timeout_ms=TIMEOUT_MS, run=b2),
        executor.task(id="b3", timeout_ms=TIMEOUT_MS, run=b3),
    )
    task_a1 = executor.task(id="a1", timeout_ms=TIMEOUT_MS, run=_greeting("task A1"))
    task_a2 = executor.task(id="a2", timeout_ms=TIMEOUT_MS, run=_greeting("task A2"))
    task_a3 = executor.task(id="a3", timeout_ms=TIMEOUT_MS, run=_greeting("task A3"))

    async def run_a(ctx: TaskContext, value: Named) -> ParentTaskResult[str]:
        return ParentTaskResult(
            output=f"Hello from task A, {value['name']}!",
            children_tasks=[ChildTask(task, value) for task in (task_a1, task_a2, task_a3)],
        )

    async def finalize_a(
        ctx: TaskContext, value: FinalizeTaskInput[Named, str]
    ) -> dict[str, object]:
        outputs = value.children_tasks_outputs
        return {
            "taskAOutput": value.output,
            "taskA1Output": outputs[0].output,
            "taskA2Output": outputs[1].output,
            "taskA3Output": outputs[2].output,
        }

    task_a = executor.parent_task(
        id="a",
        timeout_ms=TIMEOUT_MS,
        run_parent=run_a,
        finalize_task=FinalizeTask(id="taskAFinalize", timeout_ms=TIMEOUT_MS, run=finalize_a),
    )

    async def run_root(ctx: TaskContext, value: Named) -> ParentTaskResult[str]:
        return ParentTaskResult(
            output=f"Hello from root task, {value['name']}!",
            children_tasks=[ChildTask(task_a, value), ChildTask(task_b, value)],
        )

    async def finalize_root(
        ctx: TaskContext, value: FinalizeTaskInput[Named, str]
    ) -> dict[str, object]:
        a_output = value.children_tasks_outputs[0].output
        b_output = value.children_tasks_outputs[1].output
        assert isinstance(a_output, dict)
        assert isinstance(b_output, dict)
        return {"rootOutput": value.output, **a_output, **b_output}

    root = executor.parent_task(
        id="root",
        timeout_ms=TIMEOUT_MS,
        run_parent=run_root,
        finalize_task=FinalizeTask(id="rootFinalize", timeout_ms=TIMEOUT_MS, run=finalize_root),
    )

    def t_task(index: int) -> Callable[[TaskContext, str], Any]:
        async def run(ctx: TaskContext, value: str) -> str:
            await asyncio.sleep(random.random() * 0.1)  # not cryptographic
            return f"Hello from task T{index}, {value}!"

        return run

    t_tasks = [
        executor.task(id=f"t{index}", timeout_ms=TIMEOUT_MS, run=t_task(index))
        for index in range(CONCURRENT_TASKS)
    ]

    # Annotated: mypy cannot infer a TypedDict from a dict literal passed for a type variable.
    world: Named = {"name": "world"}
    progress.step_started("tree")
    root_handle = await executor.enqueue_task(root, world)
    report.enqueued.append((root_handle.task_id, root_handle.execution_id))
    progress.step_started("concurrent")
    t_handles = await asyncio.gather(*(executor.enqueue_task(task, "world") for task in t_tasks))
    report.enqueued += [(handle.task_id, handle.execution_id) for handle in t_handles]

    async def finished(handle: TaskHandle[str]) -> FinishedTaskExecution[str]:
        execution = await handle.wait_and_get_finished_execution()
        progress.advance("concurrent")
        return execution

    # Waited for all at once so that progress is reported in finishing order.
    t_waits = asyncio.gather(*(finished(handle) for handle in t_handles))
    root_execution = await root_handle.wait_and_get_finished_execution()
    progress.advance("tree")
    output = _completed_output(report, "root", root_execution)
    report.expect("root: task_id", root_execution.task_id, "root")
    report.expect_true(
        "root: execution id",
        root_execution.execution_id.startswith("te_") and len(root_execution.execution_id) == 27,
        root_execution.execution_id,
    )
    report.expect(
        "root: output",
        output,
        {
            "rootOutput": "Hello from root task, world!",
            "taskAOutput": "Hello from task A, world!",
            "taskA1Output": "Hello from task A1, world!",
            "taskA2Output": "Hello from task A2, world!",
            "taskA3Output": "Hello from task A3, world!",
            "taskB1Output": "Hello from task B1, world!",
            "taskB2Output": "Hello from task B2, world!",
            "taskB3Output": "Hello from task B3, world!",
        },
    )
    report.expect(
        "root: executions in its tree", await _tree_size(storage, root_handle.execution_id), 16
    )

    for index, execution in enumerate(await t_waits):
        output = _completed_output(report, f"t{index}", execution)
        report.expect(f"t{index}: task_id", execution.task_id, f"t{index}")
        report.expect(f"t{index}: output", output, f"Hello from task T{index}, world!")


async def _tree_size(storage: DurableStorage, root_execution_id: str) -> int:
    return len(await load_records(storage, [root_execution_id]))


async def _run_step(
    executor: DurableExecutor,
    report: WorkloadReport,
    progress: WorkloadProgress,
    key: str,
    task: Task[None, OutputT],
) -> FinishedTaskExecution[OutputT]:
    """Enqueue ``task`` as the whole of step ``key`` and wait for it to finish."""
    progress.step_started(key)
    handle = await executor.enqueue_task(task)
    report.enqueued.append((handle.task_id, handle.execution_id))
    execution = await handle.wait_and_get_finished_execution()
    progress.advance(key)
    return execution


async def _retries_and_failures(
    executor: DurableExecutor, report: WorkloadReport, progress: WorkloadProgress
) -> None:
    def retry(ctx: TaskContext, value: None) -> str:
        if ctx.attempt < 2:
            raise DurableExecutionError("Failed")
        return "Success"

    def failing(ctx: TaskContext, value: None) -> str:
        raise RuntimeError("Failed")

    retry_task = executor.task(
        id="retry", timeout_ms=TIMEOUT_MS, retry_options=RetryOptions(max_attempts=3), run=retry
    )
    failing_task = executor.task(id="failing", timeout_ms=TIMEOUT_MS, run=failing)

    execution = await _run_step(executor, report, progress, "retry", retry_task)
    report.expect("retry: output", _completed_output(report, "retry", execution), "Success")
    report.expect("retry: retry_attempts", execution.retry_attempts, 2)

    failed = await _run_step(executor, report, progress, "failing", failing_task)
    report.expect("failing: status", failed.status, "failed")
    _check_times(report, "failing", failed)
    report.expect(
        "failing: error message",
        failed.error.message if failed.status == "failed" else None,
        "RuntimeError: Failed",
    )

    async def run_with_failing_child(ctx: TaskContext, value: None) -> ParentTaskResult[None]:
        return ParentTaskResult(output=None, children_tasks=[ChildTask(failing_task, None)])

    parent_failing_child = executor.parent_task(
        id="parentWithFailingChild", timeout_ms=TIMEOUT_MS, run_parent=run_with_failing_child
    )
    execution_c = await _run_step(executor, report, progress, "failing_child", parent_failing_child)
    report.expect("parentWithFailingChild: status", execution_c.status, "children_tasks_failed")
    _check_times(report, "parentWithFailingChild", execution_c)
    report.expect(
        "parentWithFailingChild: child error message",
        [error.error.message for error in execution_c.children_tasks_errors]
        if execution_c.status == "children_tasks_failed"
        else None,
        ["RuntimeError: Failed"],
    )

    task_a1 = executor.task(id="a1_again", timeout_ms=TIMEOUT_MS, run=_greeting("task A1"))

    async def run_with_a1(ctx: TaskContext, value: None) -> ParentTaskResult[None]:
        return ParentTaskResult(
            output=None, children_tasks=[ChildTask(task_a1, Named(name="world"))]
        )

    def failing_finalize(ctx: TaskContext, value: FinalizeTaskInput[None, None]) -> None:
        raise RuntimeError("Failed")

    parent_failing_finalize = executor.parent_task(
        id="parentWithFailingFinalizeTask",
        timeout_ms=TIMEOUT_MS,
        run_parent=run_with_a1,
        finalize_task=FinalizeTask(
            id="parentWithFailingFinalizeTask_finalize", timeout_ms=TIMEOUT_MS, run=failing_finalize
        ),
    )
    execution_f = await _run_step(
        executor, report, progress, "failing_finalize", parent_failing_finalize
    )
    report.expect(
        "parentWithFailingFinalizeTask: status", execution_f.status, "finalize_task_failed"
    )
    _check_times(report, "parentWithFailingFinalizeTask", execution_f)
    report.expect(
        "parentWithFailingFinalizeTask: finalize error message",
        execution_f.finalize_task_error.message
        if execution_f.status == "finalize_task_failed"
        else None,
        "RuntimeError: Failed",
    )


async def _many_children(
    executor: DurableExecutor, report: WorkloadReport, progress: WorkloadProgress
) -> None:
    async def child(ctx: TaskContext, value: int) -> int:
        await asyncio.sleep(0.001)
        progress.advance("children")  # a child runs once: it never fails, so it never retries
        return value

    child_task = executor.task(id="concurrent_child", timeout_ms=TIMEOUT_MS, run=child)

    async def parent(ctx: TaskContext, value: None) -> ParentTaskResult[None]:
        await asyncio.sleep(0.01)
        return ParentTaskResult(
            output=None,
            children_tasks=[ChildTask(child_task, index) for index in range(CONCURRENT_CHILDREN)],
        )

    parent_task = executor.parent_task(
        id="concurrent_parent", timeout_ms=TIMEOUT_MS, run_parent=parent
    )
    progress.step_started("children")
    handle = await executor.enqueue_task(parent_task)
    report.enqueued.append((handle.task_id, handle.execution_id))
    execution = await handle.wait_and_get_finished_execution()
    output = _completed_output(report, "concurrent_parent", execution)
    outputs = output.children_tasks_outputs if isinstance(output, ParentTaskOutput) else ()
    report.expect("concurrent_parent: children outputs", len(outputs), CONCURRENT_CHILDREN)
    report.expect(
        "concurrent_parent: outputs in index order",
        [(item.index, item.output) for item in outputs],
        [(index, index) for index in range(CONCURRENT_CHILDREN)],
    )
