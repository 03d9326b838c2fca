-- Reading executions, one query per `where` variant of the storage contract, returning either
-- the execution ids or whole rows.
--
-- Shared rules (the contract in storage/types.py):
-- * every optional filter (sqlc.narg) is an equality filter when given, False included, and is
--   ignored when NULL; `expires_at < NULL` is never true, so rows without expires_at never match
--   expires_at_less_than; timestamps are epoch milliseconds;
-- * row_limit NULL means no limit (SQLite's LIMIT -1), 0 means no rows; the caller must not pass
--   a negative limit (SQLite would treat it as no limit);
-- * results are ordered: by_execution_ids by id (insertion order), by_statuses by updated_at;
--   ties are broken by id;
-- * an empty slice (execution_ids, statuses) is expanded to NULL at run time and matches nothing.
--
-- The optional `statuses` filter of by_execution_ids is a slice plus a flag: filter_statuses
-- false ignores `statuses` (pass an empty list), true keeps only rows whose status is in it.
-- (A slice cannot be NULL, and a second query per variant would double them.)
--
-- There is no FOR UPDATE SKIP LOCKED variant: SQLite has no row locks; the storage serialises
-- write transactions with BEGIN IMMEDIATE instead.

-- name: GetTaskExecutionIdsByExecutionIds :many
SELECT execution_id
FROM durable_task_executions
WHERE execution_id IN (sqlc.slice('execution_ids'))
    AND (NOT CAST(@filter_statuses AS BOOLEAN) OR status IN (sqlc.slice('statuses')))
    AND (
        CAST(sqlc.narg('needs_promise_cancellation') AS BOOLEAN) IS NULL
        OR needs_promise_cancellation = sqlc.narg('needs_promise_cancellation')
    )
    AND (
        CAST(sqlc.narg('version') AS INTEGER) IS NULL
        OR version = sqlc.narg('version')
    )
ORDER BY id
LIMIT COALESCE(CAST(sqlc.narg('row_limit') AS INTEGER), -1);

-- name: GetTaskExecutionsByExecutionIds :many
SELECT *
FROM durable_task_executions
WHERE execution_id IN (sqlc.slice('execution_ids'))
    AND (NOT CAST(@filter_statuses AS BOOLEAN) OR status IN (sqlc.slice('statuses')))
    AND (
        CAST(sqlc.narg('needs_promise_cancellation') AS BOOLEAN) IS NULL
        OR needs_promise_cancellation = sqlc.narg('needs_promise_cancellation')
    )
    AND (
        CAST(sqlc.narg('version') AS INTEGER) IS NULL
        OR version = sqlc.narg('version')
    )
ORDER BY id
LIMIT COALESCE(CAST(sqlc.narg('row_limit') AS INTEGER), -1);

-- name: GetTaskExecutionIdsByStatuses :many
SELECT execution_id
FROM durable_task_executions
WHERE status IN (sqlc.slice('statuses'))
    AND (
        CAST(sqlc.narg('is_closed') AS BOOLEAN) IS NULL
        OR is_closed = sqlc.narg('is_closed')
    )
    AND (
        CAST(sqlc.narg('expires_at_less_than') AS INTEGER) IS NULL
        OR expires_at < sqlc.narg('expires_at_less_than')
    )
ORDER BY updated_at, id
LIMIT COALESCE(CAST(sqlc.narg('row_limit') AS INTEGER), -1);

-- name: GetTaskExecutionsByStatuses :many
SELECT *
FROM durable_task_executions
WHERE status IN (sqlc.slice('statuses'))
    AND (
        CAST(sqlc.narg('is_closed') AS BOOLEAN) IS NULL
        OR is_closed = sqlc.narg('is_closed')
    )
    AND (
        CAST(sqlc.narg('expires_at_less_than') AS INTEGER) IS NULL
        OR expires_at < sqlc.narg('expires_at_less_than')
    )
ORDER BY updated_at, id
LIMIT COALESCE(CAST(sqlc.narg('row_limit') AS INTEGER), -1);
