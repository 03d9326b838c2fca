-- The executor's set-based fast paths (storage/types.py: ClaimingStorageTx and
-- BatchUpdatingStorageTx): one statement where the generic path runs one per row.

-- Claims up to row_limit due ready executions in one statement: the subquery picks them highest
-- priority first, FIFO within a priority (start_at, then insertion), skipping rows other
-- transactions hold, and the UPDATE moves them to running with a lease of lease_ms (renewed by
-- the executor while it runs). The literal 'ready' lets the (status, priority DESC, start_at, id)
-- index return the rows already in that order, so the LIMIT stops the scan early. RETURNING
-- order is unspecified: the storage sorts the rows.
--
-- sqlc.arg() rather than @ where a parameter starts an arithmetic expression: sqlc reads @ as
-- the prefix operator, which would swallow the whole sum as the parameter.
-- name: ClaimReadyTaskExecutions :many
UPDATE durable_task_executions
SET
    status = 'running',
    started_at = @now::timestamptz,
    updated_at = @now::timestamptz,
    expires_at = sqlc.arg('now')::timestamptz + sqlc.arg('lease_ms')::bigint * INTERVAL '1 millisecond',
    version = version + 1
WHERE id IN (
    SELECT id
    FROM durable_task_executions
    WHERE status = 'ready'
        AND start_at <= @now::timestamptz
    -- Priority first (higher runs first), then FIFO: the partial index
    -- ix_..._status_priority_start_at_id (migration 0007) returns ready rows in this order.
    ORDER BY priority DESC, start_at, id
    LIMIT @row_limit::integer
    FOR UPDATE SKIP LOCKED
)
RETURNING *;

-- Many independent guarded updates by execution id in one statement (what the executor does
-- when it writes the results of many runs in one transaction). Parameters are parallel arrays
-- with one element per (update, execution id) pair: item_index numbers the update, the other
-- elements repeat its filters (statuses as a JSON array of strings, or NULL for any) and its
-- new values (NULL: leave unchanged, as in update.sql). Each updated row returns the item_index
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

-- The claim's fallback, used only when the set-based claim failed on some row (a poison row:
-- a stored value the database refuses to compute with): the same candidates in the same
-- order, locked, each then claimed alone (in a savepoint) by
-- ClaimReadyTaskExecutionByExecutionId, so that one bad row fails alone and is set aside while
-- the others still run.
-- name: GetReadyTaskExecutionsToClaim :many
SELECT execution_id, timeout_ms
FROM durable_task_executions
WHERE status = 'ready'
    AND start_at <= @now::timestamptz
-- The claim's order (see ClaimReadyTaskExecutions).
ORDER BY priority DESC, start_at, id
LIMIT @row_limit::integer
FOR UPDATE SKIP LOCKED;

-- name: ClaimReadyTaskExecutionByExecutionId :one
UPDATE durable_task_executions
SET
    status = 'running',
    started_at = @now::timestamptz,
    updated_at = @now::timestamptz,
    expires_at = sqlc.arg('now')::timestamptz + sqlc.arg('lease_ms')::bigint * INTERVAL '1 millisecond',
    version = version + 1
WHERE execution_id = @execution_id
    AND status = 'ready'
    AND start_at <= sqlc.arg('now')::timestamptz
RETURNING *;

-- Renews the leases of this executor's running attempts in one statement (storage/types.py:
-- LeaseRenewingStorageTx). execution_ids and versions are parallel arrays (distinct ids): a row
-- is renewed only while it is still that attempt's (running, same version), so a renewal can
-- never revive a row that was cancelled, finished or expired and claimed again. The version is
-- not bumped: the attempt's result write is guarded by the version its claim wrote, and must
-- still match after any number of renewals. The renewed ids are returned.
-- name: RenewTaskExecutionLeases :many
UPDATE durable_task_executions AS t
SET expires_at = @expires_at::timestamptz
FROM (
    SELECT
        unnest(@execution_ids::text[]) AS execution_id,
        unnest(@versions::bigint[]) AS version
) AS l
WHERE t.execution_id = l.execution_id
    AND t.version = l.version
    AND t.status = 'running'
RETURNING t.execution_id;
