-- The partial update of the storage contract: executions by id, guarded by the optional
-- filters of select.sql's by_execution_ids (no limit). Every update the executor makes names
-- the executions it writes, so there is no update by status or by start_at.
--
-- Parameter names: new_<column> is the value to write, NULL meaning "leave unchanged"
-- (COALESCE); every other parameter is a filter, named as in select.sql. unset_error and
-- unset_expires_at clear those columns and win over new_error / new_expires_at. updated_at is
-- always written. The root/parent columns, task_id, execution_id and the enqueue-time options
-- are never updated. Timestamps are epoch milliseconds; JSON values are text.
--
-- The version guard (by_execution_ids) is part of the WHERE clause: a stale version updates
-- 0 rows. The result is the number of rows updated.

-- name: UpdateTaskExecutionsByExecutionIds :execrows
UPDATE durable_task_executions
SET
    run_output = COALESCE(CAST(sqlc.narg('new_run_output') AS TEXT), run_output),
    output = COALESCE(CAST(sqlc.narg('new_output') AS TEXT), output),
    children_tasks_completed_count = COALESCE(
        CAST(sqlc.narg('new_children_tasks_completed_count') AS INTEGER),
        children_tasks_completed_count
    ),
    children_tasks = COALESCE(CAST(sqlc.narg('new_children_tasks') AS TEXT), children_tasks),
    children_tasks_errors = COALESCE(
        CAST(sqlc.narg('new_children_tasks_errors') AS TEXT), children_tasks_errors
    ),
    finalize_task = COALESCE(CAST(sqlc.narg('new_finalize_task') AS TEXT), finalize_task),
    finalize_task_error = COALESCE(
        CAST(sqlc.narg('new_finalize_task_error') AS TEXT), finalize_task_error
    ),
    error = CASE
        WHEN CAST(@unset_error AS BOOLEAN) THEN NULL
        ELSE COALESCE(CAST(sqlc.narg('new_error') AS TEXT), error)
    END,
    status = COALESCE(CAST(sqlc.narg('new_status') AS TEXT), status),
    is_closed = COALESCE(CAST(sqlc.narg('new_is_closed') AS BOOLEAN), is_closed),
    needs_promise_cancellation = COALESCE(
        CAST(sqlc.narg('new_needs_promise_cancellation') AS BOOLEAN), needs_promise_cancellation
    ),
    retry_attempts = COALESCE(CAST(sqlc.narg('new_retry_attempts') AS INTEGER), retry_attempts),
    lease_expiries = COALESCE(CAST(sqlc.narg('new_lease_expiries') AS INTEGER), lease_expiries),
    start_at = COALESCE(CAST(sqlc.narg('new_start_at') AS INTEGER), start_at),
    started_at = COALESCE(CAST(sqlc.narg('new_started_at') AS INTEGER), started_at),
    finished_at = COALESCE(CAST(sqlc.narg('new_finished_at') AS INTEGER), finished_at),
    expires_at = CASE
        WHEN CAST(@unset_expires_at AS BOOLEAN) THEN NULL
        ELSE COALESCE(CAST(sqlc.narg('new_expires_at') AS INTEGER), expires_at)
    END,
    version = COALESCE(CAST(sqlc.narg('new_version') AS INTEGER), version),
    updated_at = CAST(@new_updated_at AS INTEGER)
WHERE execution_id IN (sqlc.slice('execution_ids'))
    AND (NOT CAST(@filter_statuses AS BOOLEAN) OR status IN (sqlc.slice('statuses')))
    AND (
        CAST(sqlc.narg('needs_promise_cancellation') AS BOOLEAN) IS NULL
        OR needs_promise_cancellation = sqlc.narg('needs_promise_cancellation')
    )
    AND (
        CAST(sqlc.narg('version') AS INTEGER) IS NULL
        OR version = sqlc.narg('version')
    );
