-- The executor's guarded writes by execution id (storage/types.py: update_task_executions_each):
-- the results of attempts, lease releases and expiries, parents' progress, executions of
-- unknown tasks failed. new_<column> is the value to write, NULL meaning "leave unchanged"
-- (COALESCE); unset_error and unset_expires_at clear those columns and win over new_error /
-- new_expires_at; updated_at is always written. The root/parent columns, task_id, execution_id
-- and the enqueue-time options are never updated. The guards (statuses, needs_promise_
-- cancellation, version; NULL: no guard) are part of the WHERE clause, so under READ COMMITTED
-- a row a concurrent transaction changed is re-checked against its new version: a stale
-- version updates nothing.

-- Many independent guarded updates by execution id in one statement (what the executor does
-- when it writes the results of many runs in one transaction). Parameters are parallel arrays
-- with one element per (update, execution id) pair: item_index numbers the update, the other
-- elements repeat its filters (statuses as a JSON array of strings, or NULL for any) and its
-- new values (new_<column> NULL: leave unchanged). Each updated row returns the item_index
-- that matched it; the storage counts them per update.
--
-- A row is updated at most once per statement (UPDATE ... FROM takes one joined row for it), so
-- the storage never sends two pairs that target the same execution id in one statement: those
-- go to a later statement, which then sees the first write, as a loop would.
-- name: UpdateTaskExecutionsEach :many
UPDATE durable_task_executions AS t
SET
    run_output = COALESCE(u.new_run_output, t.run_output),
    output = COALESCE(u.new_output, t.output),
    children_tasks_completed_count = COALESCE(
        u.new_children_tasks_completed_count, t.children_tasks_completed_count
    ),
    children_tasks = COALESCE(u.new_children_tasks, t.children_tasks),
    children_tasks_errors = COALESCE(u.new_children_tasks_errors, t.children_tasks_errors),
    finalize_task = COALESCE(u.new_finalize_task, t.finalize_task),
    finalize_task_error = COALESCE(u.new_finalize_task_error, t.finalize_task_error),
    error = CASE WHEN u.unset_error THEN NULL ELSE COALESCE(u.new_error, t.error) END,
    status = COALESCE(u.new_status, t.status),
    is_closed = COALESCE(u.new_is_closed, t.is_closed),
    needs_promise_cancellation = COALESCE(
        u.new_needs_promise_cancellation, t.needs_promise_cancellation
    ),
    retry_attempts = COALESCE(u.new_retry_attempts, t.retry_attempts),
    lease_expiries = COALESCE(u.new_lease_expiries, t.lease_expiries),
    start_at = COALESCE(u.new_start_at, t.start_at),
    started_at = COALESCE(u.new_started_at, t.started_at),
    finished_at = COALESCE(u.new_finished_at, t.finished_at),
    expires_at = CASE
        WHEN u.unset_expires_at THEN NULL
        ELSE COALESCE(u.new_expires_at, t.expires_at)
    END,
    version = COALESCE(u.new_version, t.version),
    updated_at = u.new_updated_at
FROM (
    SELECT
        unnest(@item_index::integer[]) AS item_index,
        unnest(@execution_id::text[]) AS execution_id,
        NULLIF(unnest(@statuses::jsonb[]), 'null'::jsonb) AS statuses,
        unnest(@needs_promise_cancellation::boolean[]) AS needs_promise_cancellation,
        unnest(@version::bigint[]) AS version,
        unnest(@new_run_output::text[]) AS new_run_output,
        unnest(@new_output::text[]) AS new_output,
        unnest(@new_children_tasks_completed_count::integer[])
            AS new_children_tasks_completed_count,
        NULLIF(unnest(@new_children_tasks::jsonb[]), 'null'::jsonb) AS new_children_tasks,
        NULLIF(unnest(@new_children_tasks_errors::jsonb[]), 'null'::jsonb)
            AS new_children_tasks_errors,
        NULLIF(unnest(@new_finalize_task::jsonb[]), 'null'::jsonb) AS new_finalize_task,
        NULLIF(unnest(@new_finalize_task_error::jsonb[]), 'null'::jsonb)
            AS new_finalize_task_error,
        unnest(@unset_error::boolean[]) AS unset_error,
        NULLIF(unnest(@new_error::jsonb[]), 'null'::jsonb) AS new_error,
        unnest(@new_status::text[]) AS new_status,
        unnest(@new_is_closed::boolean[]) AS new_is_closed,
        unnest(@new_needs_promise_cancellation::boolean[]) AS new_needs_promise_cancellation,
        unnest(@new_retry_attempts::integer[]) AS new_retry_attempts,
        unnest(@new_lease_expiries::integer[]) AS new_lease_expiries,
        unnest(@new_start_at::timestamptz[]) AS new_start_at,
        unnest(@new_started_at::timestamptz[]) AS new_started_at,
        unnest(@new_finished_at::timestamptz[]) AS new_finished_at,
        unnest(@unset_expires_at::boolean[]) AS unset_expires_at,
        unnest(@new_expires_at::timestamptz[]) AS new_expires_at,
        unnest(@new_version::bigint[]) AS new_version,
        unnest(@new_updated_at::timestamptz[]) AS new_updated_at
) AS u
WHERE t.execution_id = u.execution_id
    AND (u.statuses IS NULL OR u.statuses ? t.status)
    AND (
        u.needs_promise_cancellation IS NULL
        OR t.needs_promise_cancellation = u.needs_promise_cancellation
    )
    AND (u.version IS NULL OR t.version = u.version)
RETURNING u.item_index::integer AS item_index;

-- Quarantine: a row that cannot be decoded is failed if still active, with an error saying why
-- (replacing the stored error, which may be the damaged column). Nothing is decoded. A running
-- row's real start is lost with the rest of it; a ready row never had one.
-- name: FailUnreadableTaskExecution :execrows
UPDATE durable_task_executions
SET
    status = 'failed',
    error = @error::jsonb,
    started_at = @now::timestamptz,
    finished_at = @now::timestamptz,
    updated_at = @now::timestamptz,
    expires_at = NULL
WHERE execution_id = @execution_id::text
    AND status IN ('ready', 'running', 'waiting_for_children_tasks', 'waiting_for_finalize_task');
