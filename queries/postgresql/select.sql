-- Reading executions by id, and the running ones whose lease expired (storage/types.py:
-- DurableStorageTx). Results come in insertion order (id) unless a query says otherwise.

-- @sync
-- name: GetTaskExecutionsByIds :many
SELECT *
FROM durable_task_executions
WHERE execution_id = ANY(@execution_ids::text[])
ORDER BY id;

-- What waiting handles poll: which of these executions finished, without reading their rows.
-- name: GetFinishedTaskExecutionIds :many
SELECT execution_id
FROM durable_task_executions
WHERE execution_id = ANY(@execution_ids::text[])
    AND status IN (
        'completed', 'failed', 'timed_out', 'cancelled',
        'children_tasks_failed', 'finalize_task_failed'
    )
ORDER BY id;

-- The lease expirer's read: running attempts whose executor stopped renewing their lease, locked
-- (and skipping rows other transactions hold) so that concurrent expirers take disjoint rows.
-- The (status, is_closed, expires_at) index serves it.
-- name: GetExpiredTaskExecutions :many
SELECT *
FROM durable_task_executions
WHERE status = 'running'
    AND is_closed = FALSE
    AND expires_at < @now::timestamptz
ORDER BY updated_at, id
LIMIT @row_limit::integer
FOR UPDATE SKIP LOCKED;
