-- Read-only queries for operators (the CLI's `list` and `stats`): the optional inspection
-- protocol of storage/types.py (InspectableStorage). The executor never runs them.
--
-- * Newest first is insertion order, backwards: ORDER BY id DESC walks the primary key, so a
--   page needs no sort however large the table is.
-- * Optional filters (sqlc.narg) are ignored when NULL; top_level_only keeps executions that
--   were enqueued (no parent). The statuses filter is a slice plus a flag, as in select.sql.

-- name: ListTaskExecutions :many
SELECT *
FROM durable_task_executions
WHERE (NOT CAST(@filter_statuses AS BOOLEAN) OR status IN (sqlc.slice('statuses')))
    AND (CAST(sqlc.narg('task_id') AS TEXT) IS NULL OR task_id = sqlc.narg('task_id'))
    AND (NOT CAST(@top_level_only AS BOOLEAN) OR parent_execution_id IS NULL)
ORDER BY id DESC
LIMIT CAST(@row_limit AS INTEGER)
OFFSET CAST(@row_offset AS INTEGER);

-- name: CountTaskExecutionsByStatus :many
SELECT status, CAST(count(*) AS INTEGER) AS execution_count
FROM durable_task_executions
WHERE (CAST(sqlc.narg('task_id') AS TEXT) IS NULL OR task_id = sqlc.narg('task_id'))
    AND (NOT CAST(@top_level_only AS BOOLEAN) OR parent_execution_id IS NULL)
GROUP BY status
ORDER BY status;

-- The ready execution that has waited longest (or, if none is due yet, the next one due): the
-- status/start_at/id index gives it without a sort.
-- name: GetOldestReadyTaskExecution :one
SELECT *
FROM durable_task_executions
WHERE status = 'ready'
    AND (CAST(sqlc.narg('task_id') AS TEXT) IS NULL OR task_id = sqlc.narg('task_id'))
ORDER BY start_at, id
LIMIT 1;
