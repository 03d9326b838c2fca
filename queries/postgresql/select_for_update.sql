-- The queries of select.sql with FOR UPDATE SKIP LOCKED: they lock the returned rows until the
-- transaction ends and skip rows other transactions hold, so concurrent executors claim disjoint
-- rows. The clause cannot be a parameter, hence separate named queries. Same filters, limits and
-- ordering as select.sql (the ORDER BY picks which unlocked rows are claimed first).

-- name: GetTaskExecutionIdsByExecutionIdsForUpdateSkipLocked :many
SELECT execution_id
FROM durable_task_executions
WHERE execution_id = ANY(@execution_ids::text[])
    AND (sqlc.narg('statuses')::text[] IS NULL OR status = ANY(sqlc.narg('statuses')::text[]))
    AND (
        sqlc.narg('needs_promise_cancellation')::boolean IS NULL
        OR needs_promise_cancellation = sqlc.narg('needs_promise_cancellation')
    )
    AND (sqlc.narg('version')::bigint IS NULL OR version = sqlc.narg('version'))
ORDER BY id
LIMIT sqlc.narg('row_limit')::integer
FOR UPDATE SKIP LOCKED;

-- name: GetTaskExecutionsByExecutionIdsForUpdateSkipLocked :many
SELECT *
FROM durable_task_executions
WHERE execution_id = ANY(@execution_ids::text[])
    AND (sqlc.narg('statuses')::text[] IS NULL OR status = ANY(sqlc.narg('statuses')::text[]))
    AND (
        sqlc.narg('needs_promise_cancellation')::boolean IS NULL
        OR needs_promise_cancellation = sqlc.narg('needs_promise_cancellation')
    )
    AND (sqlc.narg('version')::bigint IS NULL OR version = sqlc.narg('version'))
ORDER BY id
LIMIT sqlc.narg('row_limit')::integer
FOR UPDATE SKIP LOCKED;

-- name: GetTaskExecutionIdsByStatusesForUpdateSkipLocked :many
SELECT execution_id
FROM durable_task_executions
WHERE status = ANY(@statuses::text[])
    AND (sqlc.narg('is_closed')::boolean IS NULL OR is_closed = sqlc.narg('is_closed'))
    AND (
        sqlc.narg('expires_at_less_than')::timestamptz IS NULL
        OR expires_at < sqlc.narg('expires_at_less_than')
    )
ORDER BY updated_at, id
LIMIT sqlc.narg('row_limit')::integer
FOR UPDATE SKIP LOCKED;

-- name: GetTaskExecutionsByStatusesForUpdateSkipLocked :many
SELECT *
FROM durable_task_executions
WHERE status = ANY(@statuses::text[])
    AND (sqlc.narg('is_closed')::boolean IS NULL OR is_closed = sqlc.narg('is_closed'))
    AND (
        sqlc.narg('expires_at_less_than')::timestamptz IS NULL
        OR expires_at < sqlc.narg('expires_at_less_than')
    )
ORDER BY updated_at, id
LIMIT sqlc.narg('row_limit')::integer
FOR UPDATE SKIP LOCKED;
