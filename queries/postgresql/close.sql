-- Closing finished executions (the closer, _closing.py): reading the finished rows whose effects
-- on their parent and descendants are not yet applied, marking them closed, cancelling what they
-- leave active. The finished statuses are those of model.FINISHED_STATUSES.

-- Locked, skipping rows other transactions hold, so that concurrent closers take disjoint rows
-- (a row applied twice would count a child twice in its parent).
-- name: GetFinishedUnclosedTaskExecutions :many
SELECT *
FROM durable_task_executions
WHERE status IN (
        'completed', 'failed', 'timed_out', 'cancelled',
        'children_tasks_failed', 'finalize_task_failed'
    )
    AND is_closed = FALSE
ORDER BY updated_at, id
LIMIT @row_limit::integer
FOR UPDATE SKIP LOCKED;

-- The same, among these ids only (the closer's one-by-one fallback); a query of its own so that
-- its plan looks the ids up by index instead of walking the backlog.
-- name: GetFinishedUnclosedTaskExecutionsByIds :many
SELECT *
FROM durable_task_executions
WHERE execution_id = ANY(@execution_ids::text[])
    AND status IN (
        'completed', 'failed', 'timed_out', 'cancelled',
        'children_tasks_failed', 'finalize_task_failed'
    )
    AND is_closed = FALSE
ORDER BY updated_at, id
LIMIT @row_limit::integer
FOR UPDATE SKIP LOCKED;

-- The same rows' ids, neither locked nor decoded: read when a row of the batch cannot be decoded.
-- name: GetFinishedUnclosedTaskExecutionIds :many
SELECT execution_id
FROM durable_task_executions
WHERE status IN (
        'completed', 'failed', 'timed_out', 'cancelled',
        'children_tasks_failed', 'finalize_task_failed'
    )
    AND is_closed = FALSE
ORDER BY updated_at, id
LIMIT @row_limit::integer;

-- name: CloseTaskExecutions :execrows
UPDATE durable_task_executions
SET is_closed = TRUE, updated_at = @now::timestamptz
WHERE execution_id = ANY(@execution_ids::text[]);

-- Rows whose parent's task this executor does not know: a newer updated_at moves the closer's
-- oldest-first walk past them, to be closed by an executor that knows the task.
-- name: PostponeClosingTaskExecutions :execrows
UPDATE durable_task_executions
SET updated_at = @now::timestamptz
WHERE execution_id = ANY(@execution_ids::text[]);

-- The descendants of an execution that did not complete: those still active are cancelled.
-- Attempts running in the caller's process (running_here) are stopped by it, so their rows do
-- not ask other executors to stop them. No version bump: the write only leaves active statuses,
-- and every read-modify-write is guarded by the status it read.
-- name: CancelActiveTaskExecutions :many
UPDATE durable_task_executions
SET
    status = 'cancelled',
    error = @error::jsonb,
    needs_promise_cancellation = NOT (execution_id = ANY(@running_here::text[])),
    finished_at = @now::timestamptz,
    updated_at = @now::timestamptz
WHERE execution_id = ANY(@execution_ids::text[])
    AND status IN ('ready', 'running', 'waiting_for_children_tasks', 'waiting_for_finalize_task')
RETURNING execution_id;
