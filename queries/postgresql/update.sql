-- The partial update of the storage contract: executions by id, guarded by the optional
-- filters of select.sql's by_execution_ids (no limit). Every update the executor makes names
-- the executions it writes, so there is no update by status or by start_at.
--
-- Parameter names: new_<column> is the value to write, NULL meaning "leave unchanged"
-- (COALESCE); every other parameter is a filter, named as in select.sql. unset_error and
-- unset_expires_at clear those columns and win over new_error / new_expires_at. updated_at is
-- always written. The root/parent columns, task_id, execution_id and the enqueue-time options
-- are never updated.
--
-- The version guard is part of the WHERE clause, so under READ COMMITTED a row that a concurrent
-- transaction changed is re-checked against its new version before being updated: a stale
-- version updates 0 rows. The result is the number of rows updated.

-- @sync
-- name: UpdateTaskExecutionsByExecutionIds :execrows
UPDATE durable_task_executions
SET
    run_output = COALESCE(sqlc.narg('new_run_output')::text, run_output),
    output = COALESCE(sqlc.narg('new_output')::text, output),
    children_tasks_completed_count = COALESCE(
        sqlc.narg('new_children_tasks_completed_count')::integer, children_tasks_completed_count
    ),
    children_tasks = COALESCE(sqlc.narg('new_children_tasks')::jsonb, children_tasks),
    children_tasks_errors = COALESCE(
        sqlc.narg('new_children_tasks_errors')::jsonb, children_tasks_errors
    ),
    finalize_task = COALESCE(sqlc.narg('new_finalize_task')::jsonb, finalize_task),
    finalize_task_error = COALESCE(sqlc.narg('new_finalize_task_error')::jsonb, finalize_task_error),
    error = CASE
        WHEN @unset_error::boolean THEN NULL
        ELSE COALESCE(sqlc.narg('new_error')::jsonb, error)
    END,
    status = COALESCE(sqlc.narg('new_status')::text, status),
    is_closed = COALESCE(sqlc.narg('new_is_closed')::boolean, is_closed),
    needs_promise_cancellation = COALESCE(
        sqlc.narg('new_needs_promise_cancellation')::boolean, needs_promise_cancellation
    ),
    retry_attempts = COALESCE(sqlc.narg('new_retry_attempts')::integer, retry_attempts),
    lease_expiries = COALESCE(sqlc.narg('new_lease_expiries')::integer, lease_expiries),
    start_at = COALESCE(sqlc.narg('new_start_at')::timestamptz, start_at),
    started_at = COALESCE(sqlc.narg('new_started_at')::timestamptz, started_at),
    finished_at = COALESCE(sqlc.narg('new_finished_at')::timestamptz, finished_at),
    expires_at = CASE
        WHEN @unset_expires_at::boolean THEN NULL
        ELSE COALESCE(sqlc.narg('new_expires_at')::timestamptz, expires_at)
    END,
    version = COALESCE(sqlc.narg('new_version')::bigint, version),
    updated_at = @new_updated_at::timestamptz
WHERE execution_id = ANY(@execution_ids::text[])
    AND (sqlc.narg('statuses')::text[] IS NULL OR status = ANY(sqlc.narg('statuses')::text[]))
    AND (
        sqlc.narg('needs_promise_cancellation')::boolean IS NULL
        OR needs_promise_cancellation = sqlc.narg('needs_promise_cancellation')
    )
    AND (sqlc.narg('version')::bigint IS NULL OR version = sqlc.narg('version'));
