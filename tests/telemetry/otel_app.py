"""A worker app for the telemetry tests: a parent with children, and an SDK that writes each
finished span to a file (one JSON object a line) that the test process reads back."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from durable_execution import ChildTask, DurableExecutor, ParentTaskResult, Task, TaskContext
from durable_execution.payloads import ParentTaskOutput

SPANS_FILE_VARIABLE = "DURABLE_EXECUTION_TEST_SPANS"


class FileSpanExporter(SpanExporter):
    def __init__(self, path: Path) -> None:
        self._path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._path.open("a", encoding="utf-8") as file:
            for span in spans:
                context = span.context
                file.write(
                    json.dumps(
                        {
                            "name": span.name,
                            "trace_id": f"{context.trace_id:032x}" if context else None,
                            "span_id": f"{context.span_id:016x}" if context else None,
                            "parent_span_id": f"{span.parent.span_id:016x}"
                            if span.parent
                            else None,
                            "attributes": dict(span.attributes or {}),
                            "pid": os.getpid(),
                        }
                    )
                    + "\n"
                )
        return SpanExportResult.SUCCESS


@dataclass(frozen=True)
class Tasks:
    child: Task[int, int]
    parent: Task[int, ParentTaskOutput[int]]


def register(executor: DurableExecutor) -> Tasks:
    @executor.task(id="otel_child", timeout_ms=10_000)
    async def child(ctx: TaskContext, value: int) -> int:
        return value * 10

    async def run_parent(ctx: TaskContext, value: int) -> ParentTaskResult[int]:
        return ParentTaskResult(
            output=value, children_tasks=[ChildTask(child, n) for n in range(value)]
        )

    parent = executor.parent_task(id="otel_parent", timeout_ms=10_000, run_parent=run_parent)
    return Tasks(child=child, parent=parent)


def register_traced(executor: DurableExecutor) -> Tasks:
    """What a worker's app does to export its spans: configure the SDK, then register."""
    provider = TracerProvider()
    provider.add_span_processor(
        SimpleSpanProcessor(FileSpanExporter(Path(os.environ[SPANS_FILE_VARIABLE])))
    )
    trace.set_tracer_provider(provider)
    return register(executor)
