"""Spans of enqueues and attempts, and a trace that follows an execution's tree (issue 15)."""

from __future__ import annotations

import json

from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from durable_execution import (
    ChildTask,
    DurableExecutionError,
    DurableExecutor,
    FinalizeTask,
    FinalizeTaskInput,
    ParentTaskResult,
    RetryOptions,
    TaskContext,
)
from durable_execution.storage import DurableStorage

from ._providers import get_record, installed, spans_of, unique_task_id, wait_finished

ATTEMPT = "durable_execution.attempt"
ENQUEUE = "durable_execution.enqueue"


async def test_an_attempt_span_names_the_execution_and_continues_the_enqueue(
    executor: DurableExecutor, storage: DurableStorage
) -> None:
    task_id = unique_task_id("traced")

    @executor.task(id=task_id, timeout_ms=10_000)
    async def traced(ctx: TaskContext, value: int) -> int:
        return value + 1

    await executor.start()
    handle = await executor.enqueue_task(traced, 1)
    await wait_finished(handle)

    [enqueue] = spans_of(task_id, ENQUEUE)
    [attempt] = spans_of(task_id, ATTEMPT)
    assert enqueue.kind is SpanKind.PRODUCER
    assert dict(enqueue.attributes or {}) == {
        "durable_execution.task_id": task_id,
        "durable_execution.execution_id": handle.execution_id,
    }
    assert attempt.kind is SpanKind.CONSUMER
    assert dict(attempt.attributes or {}) == {
        "durable_execution.task_id": task_id,
        "durable_execution.execution_id": handle.execution_id,
        "durable_execution.attempt": 0,
        "durable_execution.status": "completed",
    }
    assert attempt.status.status_code is StatusCode.UNSET
    assert enqueue.context is not None
    assert attempt.context is not None
    assert attempt.context.trace_id == enqueue.context.trace_id
    assert attempt.parent is not None
    assert attempt.parent.span_id == enqueue.context.span_id
    # What crossed the database: the enqueue span's W3C context, and nothing else.
    stored = (await get_record(storage, handle.execution_id)).trace_context
    assert stored is not None
    carrier = json.loads(stored)
    assert list(carrier) == ["traceparent"]
    assert carrier["traceparent"].startswith(
        f"00-{enqueue.context.trace_id:032x}-{enqueue.context.span_id:016x}-"
    )


async def test_a_failed_attempt_records_its_error_and_the_retry_its_own_span(
    executor: DurableExecutor,
) -> None:
    task_id = unique_task_id("failing")

    @executor.task(id=task_id, timeout_ms=10_000, retry_options=RetryOptions(max_attempts=1))
    async def failing(ctx: TaskContext, value: int) -> int:
        raise DurableExecutionError(f"boom {ctx.attempt}")

    await executor.start()
    handle = await executor.enqueue_task(failing, 1)
    execution = await wait_finished(handle)
    assert execution.status == "failed"

    first, second = spans_of(task_id, ATTEMPT)
    assert first.attributes is not None
    assert second.attributes is not None
    assert first.attributes["durable_execution.attempt"] == 0
    assert first.attributes["durable_execution.status"] == "ready"  # to be retried
    assert second.attributes["durable_execution.attempt"] == 1
    assert second.attributes["durable_execution.status"] == "failed"
    for span, message in ((first, "boom 0"), (second, "boom 1")):
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description is not None
        assert message in span.status.description
        [event] = [e for e in span.events if e.name == "exception"]
        assert event.attributes is not None
        assert event.attributes["exception.message"] == message
    # Both attempts belong to the trace of the one enqueue.
    assert first.context is not None
    assert second.context is not None
    assert first.context.trace_id == second.context.trace_id


async def test_enqueue_tasks_is_one_span_with_a_count(executor: DurableExecutor) -> None:
    task_id = unique_task_id("batch")

    @executor.task(id=task_id, timeout_ms=10_000)
    async def batch(ctx: TaskContext, value: int) -> int:
        return value

    await executor.start()
    handles = await executor.enqueue_tasks(batch, [1, 2, 3])
    for handle in handles:
        await wait_finished(handle)

    [enqueue] = spans_of(task_id, ENQUEUE)
    assert enqueue.attributes is not None
    assert enqueue.attributes["durable_execution.count"] == 3
    attempts = spans_of(task_id, ATTEMPT)
    assert len(attempts) == 3
    assert enqueue.context is not None
    assert {a.parent.span_id for a in attempts if a.parent} == {enqueue.context.span_id}


async def test_a_parents_children_and_finalize_join_the_parents_trace(
    executor: DurableExecutor,
) -> None:
    parent_id, child_id, finalize_id = (unique_task_id(n) for n in ("parent", "child", "fin"))

    @executor.task(id=child_id, timeout_ms=10_000)
    async def child(ctx: TaskContext, value: int) -> int:
        # The attempt span is current while the task's own code runs: its spans nest in it.
        with trace.get_tracer("test").start_as_current_span("inside child"):
            return value * 2

    def finalize(ctx: TaskContext, value: FinalizeTaskInput[int, int]) -> str:
        return "done"

    async def run_parent(ctx: TaskContext, value: int) -> ParentTaskResult[int]:
        return ParentTaskResult(
            output=value, children_tasks=[ChildTask(child, 1), ChildTask(child, 2)]
        )

    parent = executor.parent_task(
        id=parent_id,
        timeout_ms=10_000,
        run_parent=run_parent,
        finalize_task=FinalizeTask(id=finalize_id, timeout_ms=10_000, run=finalize),
    )

    await executor.start()
    handle = await executor.enqueue_task(parent, 5)
    execution = await wait_finished(handle)
    assert execution.status == "completed"

    [enqueue] = spans_of(parent_id, ENQUEUE)
    [parent_attempt] = spans_of(parent_id, ATTEMPT)
    children = spans_of(child_id, ATTEMPT)
    [finalize_attempt] = spans_of(finalize_id, ATTEMPT)
    assert len(children) == 2
    assert enqueue.context is not None
    assert parent_attempt.context is not None
    trace_id = enqueue.context.trace_id
    for span in (parent_attempt, *children, finalize_attempt):
        assert span.context is not None
        assert span.context.trace_id == trace_id, span.attributes
    # The children were created by the parent's attempt: they are its children in the trace.
    for span in children:
        assert span.parent is not None
        assert span.parent.span_id == parent_attempt.context.span_id
        assert span.attributes is not None
        assert span.attributes["durable_execution.status"] == "completed"
    assert parent_attempt.attributes is not None
    assert parent_attempt.attributes["durable_execution.status"] == "waiting_for_children_tasks"
    # A span the task's code opened nests under that child's attempt.
    child_span_ids = {span.context.span_id for span in children if span.context}
    inside = [
        span
        for span in installed().spans.get_finished_spans()
        if span.name == "inside child" and span.parent and span.parent.span_id in child_span_ids
    ]
    assert len(inside) == 2
