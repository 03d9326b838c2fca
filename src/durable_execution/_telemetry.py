"""OpenTelemetry traces and metrics, when ``opentelemetry-api`` is installed (the ``[otel]`` extra).

The one module that imports ``opentelemetry``. Without it every function here is a no-op that
costs a call; with the API but no SDK configured the API's own no-op tracer and meter apply.
Tracer, meter and instruments are looked up on first use, through the API's global providers,
so an application may configure its SDK before or after importing durable_execution.

Trace context crosses processes through the database: every execution stores the W3C context
(``traceparent``/``tracestate`` as a JSON object) current when it was created — the enqueue span
for a top-level execution, the parent's attempt span for a child or finalize — and each attempt
span continues it, in whatever process claims the row. Baggage is deliberately not stored: it
may carry anything, of any size, and would outlive its request in the table.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING

try:
    from opentelemetry import metrics, trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # the [otel] extra is not installed: everything below is a no-op
    ENABLED = False
else:
    ENABLED = True

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.metrics import Counter, Histogram
    from opentelemetry.trace import Span

    from durable_execution.storage.types import TaskExecutionRecord

INSTRUMENTATION_NAME = "durable_execution"
ATTEMPT_SPAN = "durable_execution.attempt"
ENQUEUE_SPAN = "durable_execution.enqueue"
TASK_ID = "durable_execution.task_id"
EXECUTION_ID = "durable_execution.execution_id"
ATTEMPT = "durable_execution.attempt"
STATUS = "durable_execution.status"
COUNT = "durable_execution.count"


@dataclass(frozen=True, slots=True)
class _Instruments:
    executions: Counter
    attempt_duration: Histogram
    queue_lag: Histogram
    claim_batch_size: Histogram
    lease_expiries: Counter


@cache
def _instruments() -> _Instruments:
    meter = metrics.get_meter(INSTRUMENTATION_NAME)
    return _Instruments(
        executions=meter.create_counter(
            "durable_execution.executions",
            unit="{execution}",
            description="Executions that reached a final status, by status",
        ),
        attempt_duration=meter.create_histogram(
            "durable_execution.attempt.duration",
            unit="s",
            description="Duration of one attempt, from its start to its outcome",
        ),
        queue_lag=meter.create_histogram(
            "durable_execution.queue.lag",
            unit="s",
            description="Time from an execution being due (start_at) to its claim",
        ),
        claim_batch_size=meter.create_histogram(
            "durable_execution.claim.batch_size",
            unit="{execution}",
            description="Executions taken by one claim",
        ),
        lease_expiries=meter.create_counter(
            "durable_execution.lease_expiries",
            unit="{expiry}",
            description="Leases of running attempts that expired (their executor died or stalled)",
        ),
    )


@cache
def _tracer() -> trace.Tracer:
    return trace.get_tracer(INSTRUMENTATION_NAME)


def _recording() -> bool:
    """Whether spans may be recorded: a tracer provider other than the API's no-op ones is set.

    Without one, the API's tracer hands back a non-recording span carrying its parent's context,
    so skipping the span changes nothing anyone can observe (the current span context, which
    :func:`current_trace_context` stores, stays the parent's) and saves the two context switches
    and the span objects that cost about a tenth of a trivial execution's time. Looked up on every
    call: an application may configure its SDK at any time."""
    return not isinstance(
        trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
    )


@cache
def _propagator() -> TraceContextTextMapPropagator:
    return TraceContextTextMapPropagator()


def current_trace_context() -> str | None:
    """The W3C context of the current span as stored text; None when nothing is being traced."""
    if not ENABLED or not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _propagator().inject(carrier)
    return json.dumps(carrier, separators=(",", ":"), sort_keys=True) if carrier else None


def _stored_context(text: str | None) -> Context | None:
    """The context a stored trace context continues; None (a new trace) if absent or unreadable.

    A damaged value must never fail an attempt: tracing is an observer."""
    if text is None:
        return None
    try:
        carrier = json.loads(text)
    except ValueError:
        return None
    if not isinstance(carrier, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in carrier.items()
    ):
        return None
    return _propagator().extract(carrier)


class AttemptSpan:
    """What the runner reports about one attempt: its status, and the error if it failed."""

    __slots__ = ("_error", "_status")

    def __init__(self) -> None:
        self._status = "cancelled"  # an attempt stopped before any outcome stores nothing
        self._error: BaseException | None = None

    def outcome(self, status: str, error: BaseException | None) -> None:
        self._status = status
        self._error = error


@contextmanager
def attempt_span(record: TaskExecutionRecord) -> Iterator[AttemptSpan]:
    """A span (current while the attempt runs) continuing the trace stored on ``record``."""
    attempt = AttemptSpan()
    if not ENABLED:
        yield attempt
        return
    started = time.perf_counter()
    if record.trace_context is None and not _recording():
        # No stored context to continue and nothing recorded: the span would be a no-op (see
        # _recording); the duration is still measured, for a meter provider may be set alone.
        try:
            yield attempt
        finally:
            _instruments().attempt_duration.record(
                time.perf_counter() - started, {TASK_ID: record.task_id, STATUS: attempt._status}
            )
        return
    span = _tracer().start_span(
        ATTEMPT_SPAN,
        context=_stored_context(record.trace_context),
        kind=trace.SpanKind.CONSUMER,
        attributes={
            TASK_ID: record.task_id,
            EXECUTION_ID: record.execution_id,
            ATTEMPT: record.retry_attempts,
        },
    )
    try:
        with trace.use_span(span, end_on_exit=False, record_exception=False):
            yield attempt
    finally:
        _end_attempt(span, attempt, record.task_id, time.perf_counter() - started)


def _end_attempt(span: Span, attempt: AttemptSpan, task_id: str, seconds: float) -> None:
    status, error = attempt._status, attempt._error
    span.set_attribute(STATUS, status)
    if error is not None:
        span.record_exception(error)
        span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(error).__name__}: {error}"))
    span.end()
    _instruments().attempt_duration.record(seconds, {TASK_ID: task_id, STATUS: status})


@contextmanager
def enqueue_span(task_id: str) -> Iterator[None]:
    """A span around an enqueue, current while its records are built (they store its context)."""
    if not ENABLED or not _recording():
        yield  # a no-op tracer's span would only repeat the current context (see _recording)
        return
    with _tracer().start_as_current_span(
        ENQUEUE_SPAN, kind=trace.SpanKind.PRODUCER, attributes={TASK_ID: task_id}
    ):
        yield


def enqueued(*, execution_id: str | None = None, count: int | None = None) -> None:
    """Describe on the current enqueue span what it created: one execution, or a batch's count."""
    if not ENABLED or not _recording():
        return
    span = trace.get_current_span()
    if execution_id is not None:
        span.set_attribute(EXECUTION_ID, execution_id)
    if count is not None:
        span.set_attribute(COUNT, count)


def execution_finished(task_id: str, status: str) -> None:
    if ENABLED:
        _instruments().executions.add(1, {TASK_ID: task_id, STATUS: status})


def claimed(records: Sequence[TaskExecutionRecord]) -> None:
    """A claim's batch size, and each claimed row's lag from due (start_at) to claimed.

    Claims that took nothing (an idle poll) are not recorded: they would drown the sizes."""
    if not ENABLED or not records:
        return
    instruments = _instruments()
    for record in records:
        claimed_at: datetime | None = record.started_at
        if claimed_at is not None:
            lag = (claimed_at - record.start_at).total_seconds()
            instruments.queue_lag.record(max(lag, 0.0), {TASK_ID: record.task_id})
    instruments.claim_batch_size.record(len(records))


def lease_expired(task_id: str) -> None:
    if ENABLED:
        _instruments().lease_expiries.add(1, {TASK_ID: task_id})
