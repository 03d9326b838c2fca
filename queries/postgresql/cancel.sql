-- Cancelling executions (_cancellation.py): a user's cancel, and the requests other processes
-- leave for the executor running an attempt.

-- A user's cancel of one execution, guarded by the status and version its caller read (a row
-- that changed meanwhile is read again). needs_promise_cancellation asks the executor running
-- the attempt to stop it; false when the caller runs it and stops it itself.
-- @sync
-- name: CancelTaskExecution :execrows
UPDATE durable_task_executions
SET
    status = 'cancelled',
    error = @error::jsonb,
    needs_promise_cancellation = @needs_promise_cancellation::boolean,
    finished_at = @now::timestamptz,
    updated_at = @now::timestamptz,
    version = version + 1
WHERE execution_id = @execution_id::text
    AND status = @expected_status::text
    AND version = @expected_version::bigint;

-- Of the attempts running in the caller's process, those whose rows ask for them to be stopped:
-- the flag is cleared as they are taken. Locked rows are skipped (taken by a later call).
-- name: TakeCancellationRequests :many
UPDATE durable_task_executions
SET needs_promise_cancellation = FALSE, updated_at = @now::timestamptz
WHERE id IN (
    SELECT id
    FROM durable_task_executions
    WHERE execution_id = ANY(@execution_ids::text[])
        AND needs_promise_cancellation
    ORDER BY id
    LIMIT @row_limit::integer
    FOR UPDATE SKIP LOCKED
)
RETURNING execution_id;
