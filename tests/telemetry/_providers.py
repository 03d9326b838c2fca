"""The SDK, installed once per test process as the global provider, with in-memory exporters.

OpenTelemetry lets a process set its global tracer and meter providers once, so every telemetry
test shares these; each test tells its own spans and points apart by a task id of its own.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from durable_execution import TaskExecution, TaskHandle
from durable_execution.storage import DurableStorage, TaskExecutionRecord

OutputT = TypeVar("OutputT")


@dataclass(frozen=True)
class Exporters:
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader


@cache
def installed() -> Exporters:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(tracer_provider)
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    return Exporters(spans, reader)


def unique_task_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


def spans_of(task_id: str, name: str | None = None) -> list[ReadableSpan]:
    """Finished spans of ``task_id`` (by attribute), oldest first."""
    found = [
        span
        for span in installed().spans.get_finished_spans()
        if span.attributes is not None
        and span.attributes.get("durable_execution.task_id") == task_id
        and (name is None or span.name == name)
    ]
    return sorted(found, key=lambda span: span.start_time or 0)


def points(name: str, **attributes: str) -> Sequence[NumberDataPoint | HistogramDataPoint]:
    """The points of metric ``name`` whose attributes include ``attributes``."""
    data = installed().metrics.get_metrics_data()
    found: list[NumberDataPoint | HistogramDataPoint] = []
    if data is None:
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != name:
                    continue
                for point in metric.data.data_points:
                    if isinstance(point, NumberDataPoint | HistogramDataPoint) and all(
                        (point.attributes or {}).get(k) == v for k, v in attributes.items()
                    ):
                        found.append(point)
    return found


async def wait_finished(handle: TaskHandle[OutputT]) -> TaskExecution[OutputT]:
    return await handle.wait_and_get_finished_execution(polling_interval_ms=20, timeout_ms=30_000)


async def get_record(storage: DurableStorage, execution_id: str) -> TaskExecutionRecord:
    async with storage.transaction() as tx:
        [record] = await tx.get_task_executions([execution_id])
    return record
