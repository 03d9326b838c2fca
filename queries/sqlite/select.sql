-- Reading executions by id, and the running ones whose lease expired (storage/types.py:
-- DurableStorageTx). Results come in insertion order (id) unless a query says otherwise.
-- Timestamps are epoch milliseconds. An empty slice is expanded to NULL at run time and matches
-- nothing. No FOR UPDATE SKIP LOCKED: SQLite has no row locks; the storage serialises write
-- transactions with BEGIN IMMEDIATE instead.

-- name: GetTaskExecutionsByIds :many
SELECT *
FROM durable_task_executions
WHERE execution_id IN (sqlc.slice('execution_ids'))
ORDER BY id;

-- What waiting handles poll: which of these executions finished, without reading their rows.
-- name: GetFinishedTaskExecutionIds :many
SELECT execution_id
FROM durable_task_executions
WHERE execution_id IN (sqlc.slice('execution_ids'))
    AND status IN (
        'completed', 'failed', 'timed_out', 'cancelled',
        'children_tasks_failed', 'finalize_task_failed'
    )
ORDER BY id;

-- The lease expirer's read: running attempts whose executor stopped renewing their lease.
-- name: GetExpiredTaskExecutions :many
SELECT *
FROM durable_task_executions
WHERE status = 'running'
    AND is_closed = FALSE
    AND expires_at < CAST(@now AS INTEGER)
ORDER BY updated_at, id
LIMIT CAST(@row_limit AS INTEGER);
