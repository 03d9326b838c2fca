-- Read-only queries for operators (the CLI's `list` and `stats`): the optional inspection
-- protocol of storage/types.py (InspectableStorage). The executor never runs them.
--
-- * Newest first is insertion order, backwards: ORDER BY id DESC walks the primary key, so a
--   page needs no sort however large the table is.
-- * Optional filters (sqlc.narg) are ignored when NULL; top_level_only keeps executions that
--   were enqueued (no parent).
-- * Keyset paging (the dashboard's "older" link): before_execution_id keeps the rows inserted
--   before that execution. The bound is always present (the largest id when no cursor is given,
--   nothing when the cursor's execution no longer exists), never behind an OR, so that the
--   primary-key walk starts at the cursor instead of skipping rows up to it.

-- name: ListTaskExecutions :many
SELECT listed.*
FROM durable_task_executions AS listed
WHERE listed.id < coalesce(
        (
            SELECT cursor_row.id
            FROM durable_task_executions AS cursor_row
            WHERE cursor_row.execution_id = sqlc.narg('before_execution_id')::text
        ),
        CASE WHEN sqlc.narg('before_execution_id')::text IS NULL
            THEN 9223372036854775807 ELSE 0 END
    )
    AND (sqlc.narg('statuses')::text[] IS NULL OR listed.status = ANY(sqlc.narg('statuses')::text[]))
    AND (sqlc.narg('task_id')::text IS NULL OR listed.task_id = sqlc.narg('task_id'))
    AND (NOT @top_level_only::boolean OR listed.parent_execution_id IS NULL)
    AND (sqlc.narg('created_from')::timestamptz IS NULL
        OR listed.created_at >= sqlc.narg('created_from')::timestamptz)
    AND (sqlc.narg('created_before')::timestamptz IS NULL
        OR listed.created_at < sqlc.narg('created_before')::timestamptz)
ORDER BY listed.id DESC
LIMIT @row_limit::integer
OFFSET @row_offset::integer;

-- name: CountTaskExecutionsByStatus :many
SELECT status, count(*)::bigint AS execution_count
FROM durable_task_executions
WHERE (sqlc.narg('task_id')::text IS NULL OR task_id = sqlc.narg('task_id'))
    AND (NOT @top_level_only::boolean OR parent_execution_id IS NULL)
GROUP BY status
ORDER BY status;

-- The ready execution that has waited longest (or, if none is due yet, the next one due): the
-- status/start_at/id index gives it without a sort.
-- name: GetOldestReadyTaskExecution :one
SELECT *
FROM durable_task_executions
WHERE status = 'ready'
    AND (sqlc.narg('task_id')::text IS NULL OR task_id = sqlc.narg('task_id'))
ORDER BY start_at, id
LIMIT 1;
