-- Reading executions, one query per `where` variant of the storage contract, returning either
-- the execution ids or whole rows.
--
-- Shared rules (the contract in storage/types.py):
-- * every optional filter (sqlc.narg) is an equality filter when given, False included, and is
--   ignored when NULL; `expires_at < NULL` is never true, so rows without expires_at never match
--   expires_at_less_than;
-- * row_limit NULL means no limit (LIMIT NULL), 0 means no rows;
-- * results are ordered: by_execution_ids by id (insertion order), by_statuses by updated_at;
--   ties are broken by id.
-- The same queries with FOR UPDATE SKIP LOCKED are in select_for_update.sql.

-- name: GetTaskExecutionIdsByExecutionIds :many
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
LIMIT sqlc.narg('row_limit')::integer;

-- @sync
-- name: GetTaskExecutionsByExecutionIds :many
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
LIMIT sqlc.narg('row_limit')::integer;

-- name: GetTaskExecutionIdsByStatuses :many
SELECT execution_id
FROM durable_task_executions
WHERE status = ANY(@statuses::text[])
    AND (sqlc.narg('is_closed')::boolean IS NULL OR is_closed = sqlc.narg('is_closed'))
    AND (
        sqlc.narg('expires_at_less_than')::timestamptz IS NULL
        OR expires_at < sqlc.narg('expires_at_less_than')
    )
ORDER BY updated_at, id
LIMIT sqlc.narg('row_limit')::integer;

-- name: GetTaskExecutionsByStatuses :many
SELECT *
FROM durable_task_executions
WHERE status = ANY(@statuses::text[])
    AND (sqlc.narg('is_closed')::boolean IS NULL OR is_closed = sqlc.narg('is_closed'))
    AND (
        sqlc.narg('expires_at_less_than')::timestamptz IS NULL
        OR expires_at < sqlc.narg('expires_at_less_than')
    )
ORDER BY updated_at, id
LIMIT sqlc.narg('row_limit')::integer;
