-- Cancelling executions (_cancellation.py): a user's cancel, and the requests other processes
-- leave for the executor running an attempt. Timestamps are epoch milliseconds.

-- A user's cancel of one execution, guarded by the status and version its caller read (a row
-- that changed meanwhile is read again). needs_promise_cancellation asks the executor running
-- the attempt to stop it; false when the caller runs it and stops it itself.
-- name: CancelTaskExecution :execrows
UPDATE durable_task_executions
SET
    status = 'cancelled',
    error = CAST(@error AS TEXT),
    needs_promise_cancellation = CAST(@needs_promise_cancellation AS BOOLEAN),
    finished_at = CAST(@now AS INTEGER),
    updated_at = CAST(@now AS INTEGER),
    version = version + 1
WHERE execution_id = CAST(@execution_id AS TEXT)
    AND status = CAST(@expected_status AS TEXT)
    AND version = CAST(@expected_version AS INTEGER);

-- Of the attempts running in the caller's process, those whose rows ask for them to be stopped
-- (oldest first, at most row_limit): the flag is cleared as they are taken.
-- name: TakeCancellationRequests :many
UPDATE durable_task_executions
SET needs_promise_cancellation = FALSE, updated_at = CAST(@now AS INTEGER)
WHERE id IN (
    SELECT asked.id
    FROM durable_task_executions AS asked
    WHERE asked.execution_id IN (sqlc.slice('execution_ids'))
        AND asked.needs_promise_cancellation
    ORDER BY asked.id
    LIMIT CAST(@row_limit AS INTEGER)
)
RETURNING execution_id;
