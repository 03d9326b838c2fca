-- The W3C trace context (traceparent/tracestate, as a small JSON object) of whoever enqueued this
-- execution, so that its attempts — in any process, however much later — continue that trace.
-- NULL when OpenTelemetry was not in use, or nothing was being traced, when it was enqueued.
-- Existing rows start NULL: they carry no trace.
ALTER TABLE durable_task_executions
    ADD COLUMN trace_context TEXT
        CHECK (trace_context IS NULL OR typeof(trace_context) = 'text');
