-- The executor's set-based fast path (storage/types.py: ClaimingStorageTx): one statement where
-- the generic claim runs one per row. Timestamps are epoch milliseconds.

-- Claims up to row_limit due ready executions in one statement: the subquery picks them in FIFO
-- order (start_at, then insertion) and the UPDATE moves them to running with a lease of each
-- row's own timeout_ms plus lease_margin_ms. The literal 'ready' lets the (status, start_at, id)
-- index return the rows already in that order, so the LIMIT stops the scan early. No row locks
-- are needed: the write transaction (BEGIN IMMEDIATE) already excludes every other writer.
-- RETURNING order is unspecified: the storage sorts the rows.
-- name: ClaimReadyTaskExecutions :many
UPDATE durable_task_executions
SET
    status = 'running',
    started_at = CAST(@now AS INTEGER),
    updated_at = CAST(@now AS INTEGER),
    expires_at = CAST(@now AS INTEGER) + timeout_ms + CAST(@lease_margin_ms AS INTEGER),
    version = version + 1
WHERE id IN (
    SELECT id
    FROM durable_task_executions
    WHERE status = 'ready'
        AND start_at <= CAST(@now AS INTEGER)
    ORDER BY start_at, id
    LIMIT CAST(@row_limit AS INTEGER)
)
RETURNING *;

-- The claim's fallback, used only when the set-based claim failed on some row (a poison row: a
-- timeout_ms whose lease overflows, a value a CHECK refuses): the same candidates in the same
-- order, each then claimed alone by ClaimReadyTaskExecutionByExecutionId, so that one bad row
-- fails alone and is set aside while the others still run.
-- name: GetReadyTaskExecutionsToClaim :many
SELECT execution_id, timeout_ms
FROM durable_task_executions
WHERE status = 'ready'
    AND start_at <= CAST(@now AS INTEGER)
ORDER BY start_at, id
LIMIT CAST(@row_limit AS INTEGER);

-- name: ClaimReadyTaskExecutionByExecutionId :one
UPDATE durable_task_executions
SET
    status = 'running',
    started_at = CAST(@now AS INTEGER),
    updated_at = CAST(@now AS INTEGER),
    expires_at = CAST(@now AS INTEGER) + timeout_ms + CAST(@lease_margin_ms AS INTEGER),
    version = version + 1
WHERE execution_id = @execution_id
    AND status = 'ready'
    AND start_at <= CAST(@now AS INTEGER)
RETURNING *;
