-- Read-only queries for operators (the CLI's `list` and `stats`): the optional inspection
-- protocol of storage/types.py (InspectableStorage). The executor never runs them.
--
-- * Newest first is insertion order, backwards: ORDER BY id DESC walks the primary key, so a
--   page needs no sort however large the table is.
-- * Optional filters (sqlc.narg) are ignored when NULL; top_level_only keeps executions that
--   were enqueued (no parent).

-- name: ListTaskExecutions :many
SELECT *
FROM durable_task_executions
WHERE (sqlc.narg('statuses')::text[] IS NULL OR status = ANY(sqlc.narg('statuses')::text[]))
    AND (sqlc.narg('task_id')::text IS NULL OR task_id = sqlc.narg('task_id'))
    AND (NOT @top_level_only::boolean OR parent_execution_id IS NULL)
ORDER BY id DESC
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
