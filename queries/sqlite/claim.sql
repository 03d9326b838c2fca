-- The executor's set-based fast path (storage/types.py: ClaimingStorageTx): one statement where
-- the generic claim runs one per row. Timestamps are epoch milliseconds.

-- Claims up to row_limit due ready executions in one statement: the subquery picks them highest
-- priority first, FIFO within a priority (start_at, then insertion), and the UPDATE moves them
-- to running with a lease of lease_ms (renewed by the executor while it runs; the attempt's
-- timeout is the executor's business). The literal 'ready' lets the (status, priority DESC,
-- start_at, id) index return the rows already in that order, so the LIMIT stops the scan early.
-- No row locks are needed: the write transaction (BEGIN IMMEDIATE) already excludes every other
-- writer.
-- RETURNING order is unspecified: the storage sorts the rows.
-- name: ClaimReadyTaskExecutions :many
UPDATE durable_task_executions
SET
    status = 'running',
    started_at = CAST(@now AS INTEGER),
    updated_at = CAST(@now AS INTEGER),
    expires_at = CAST(@now AS INTEGER) + CAST(@lease_ms AS INTEGER),
    version = version + 1
WHERE id IN (
    SELECT id
    FROM durable_task_executions
    WHERE status = 'ready'
        AND start_at <= CAST(@now AS INTEGER)
    -- Priority first (higher runs first), then FIFO: the partial index
    -- ix_..._status_priority_start_at_id (migration 0007) returns ready rows in this order.
    ORDER BY priority DESC, start_at, id
    LIMIT CAST(@row_limit AS INTEGER)
)
RETURNING *;

-- The claim's fallback, used only when the set-based claim failed on some row (a poison row: a
-- value a CHECK refuses): the same candidates in the same
-- order, each then claimed alone by ClaimReadyTaskExecutionByExecutionId, so that one bad row
-- fails alone and is set aside while the others still run.
-- name: GetReadyTaskExecutionsToClaim :many
SELECT execution_id, timeout_ms
FROM durable_task_executions
WHERE status = 'ready'
    AND start_at <= CAST(@now AS INTEGER)
-- The claim's order (see ClaimReadyTaskExecutions).
ORDER BY priority DESC, start_at, id
LIMIT CAST(@row_limit AS INTEGER);

-- name: ClaimReadyTaskExecutionByExecutionId :one
UPDATE durable_task_executions
SET
    status = 'running',
    started_at = CAST(@now AS INTEGER),
    updated_at = CAST(@now AS INTEGER),
    expires_at = CAST(@now AS INTEGER) + CAST(@lease_ms AS INTEGER),
    version = version + 1
WHERE execution_id = @execution_id
    AND status = 'ready'
    AND start_at <= CAST(@now AS INTEGER)
RETURNING *;

-- Renews the leases of this executor's running attempts in one statement (storage/types.py:
-- LeaseRenewingStorageTx). leases is a JSON object {execution_id: claimed version}: a row is
-- renewed only while it is still that attempt's (running, same version), so a renewal can never
-- revive a row that was cancelled, finished or expired and claimed again. The version is not
-- bumped: the attempt's result write is guarded by the version its claim wrote, and must still
-- match after any number of renewals. The renewed ids are returned.
-- name: RenewTaskExecutionLeases :many
UPDATE durable_task_executions
SET expires_at = CAST(@expires_at AS INTEGER)
WHERE status = 'running'
    AND execution_id IN (SELECT key FROM json_each(CAST(@leases AS TEXT)))
    AND version = (
        SELECT value FROM json_each(CAST(@leases AS TEXT)) WHERE key = execution_id
    )
RETURNING execution_id;
