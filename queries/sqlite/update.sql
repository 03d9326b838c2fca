-- The executor's guarded writes by execution id (storage/types.py: update_task_executions_each,
-- which runs this statement once per item, in order, inside its write transaction).
--
-- Parameter names: new_<column> is the value to write, NULL meaning "leave unchanged"
-- (COALESCE); every other parameter is a guard (NULL: no guard; filter_statuses false ignores
-- statuses, a slice cannot be NULL). unset_error and unset_expires_at clear those columns and win
-- over new_error / new_expires_at. updated_at is always written. The root/parent columns,
-- task_id, execution_id and the enqueue-time options are never updated. Timestamps are epoch
-- milliseconds; JSON values are text. A stale version updates 0 rows; the result is the number
-- of rows updated.

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

-- Quarantine: a row that cannot be decoded is failed if still active, with an error saying why
-- (replacing the stored error, which may be the damaged column). Nothing is decoded. A running
-- row's real start is lost with the rest of it; a ready row never had one.
-- name: FailUnreadableTaskExecution :execrows
UPDATE durable_task_executions
SET
    status = 'failed',
    error = CAST(@error AS TEXT),
    started_at = CAST(@now AS INTEGER),
    finished_at = CAST(@now AS INTEGER),
    updated_at = CAST(@now AS INTEGER),
    expires_at = NULL
WHERE execution_id = CAST(@execution_id AS TEXT)
    AND status IN ('ready', 'running', 'waiting_for_children_tasks', 'waiting_for_finalize_task');
