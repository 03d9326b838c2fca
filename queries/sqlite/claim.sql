-- The claim and the lease renewal (storage/types.py: claim_ready_task_executions,
-- renew_task_execution_leases), each one set-based statement, and the claim's fallback for
-- poison rows. Timestamps are epoch milliseconds.

-- Claims up to row_limit due ready executions in one statement, highest priority first, FIFO
-- within a priority (start_at, then insertion), and moves them to running with a lease of
-- lease_ms (renewed by the executor while it runs; the attempt's timeout is the executor's
-- business). Only executions of the served
-- queues (@queues, a JSON array of names; @any_queue: every queue). No row locks are needed: the
-- write transaction (BEGIN IMMEDIATE) already excludes every other writer, so counting running
-- rows inside the statement enforces per-key concurrency limits across processes. Two parts,
-- merged in that order under the outer LIMIT:
-- * executions without a concurrency limit, read in order from the ready_unlimited index, so
--   the LIMIT stops the scan early;
-- * executions under a limit: each takes its place in its (task_id, concurrency_key) order and
--   is claimable while place + running executions of the key <= the key's limit (the smallest
--   its waiting rows carry). Executions of a key at its limit are passed over, never in the
--   way of later ones. This part reads every due waiting row under a limit.
-- INDEXED BY: both parts read their partial index (the planner, without statistics, would
-- rather range-scan start_at in the general index and sort). RETURNING order is unspecified:
-- the storage sorts the rows.
-- name: ClaimReadyTaskExecutions :many
UPDATE durable_task_executions
SET
    status = 'running',
    started_at = CAST(@now AS INTEGER),
    updated_at = CAST(@now AS INTEGER),
    expires_at = CAST(@now AS INTEGER) + CAST(@lease_ms AS INTEGER),
    version = version + 1
WHERE id IN (
    SELECT c.id
    FROM (
        SELECT u.id, u.priority, u.start_at
        FROM (
            SELECT id, priority, start_at
            FROM durable_task_executions INDEXED BY ix_durable_task_executions_ready_unlimited
            WHERE status = 'ready'
                AND concurrency_limit IS NULL
                AND start_at <= CAST(@now AS INTEGER)
                AND (
                    CAST(@any_queue AS BOOLEAN)
                    OR queue IN (SELECT value FROM json_each(CAST(@queues AS TEXT)))
                )
            ORDER BY priority DESC, start_at, id
            LIMIT CAST(@row_limit AS INTEGER)
        ) AS u
        UNION ALL
        SELECT w.id, w.priority, w.start_at
        FROM (
            SELECT
                e.id,
                e.priority,
                e.start_at,
                e.task_id,
                e.concurrency_key,
                row_number() OVER (
                    PARTITION BY e.task_id, e.concurrency_key
                    ORDER BY e.priority DESC, e.start_at, e.id
                ) AS place,
                min(e.concurrency_limit) OVER (
                    PARTITION BY e.task_id, e.concurrency_key
                ) AS key_limit
            FROM durable_task_executions AS e
                INDEXED BY ix_durable_task_executions_ready_concurrency
            WHERE e.status = 'ready'
                AND e.concurrency_limit IS NOT NULL
                AND e.start_at <= CAST(@now AS INTEGER)
                AND (
                    CAST(@any_queue AS BOOLEAN)
                    OR e.queue IN (SELECT value FROM json_each(CAST(@queues AS TEXT)))
                )
        ) AS w
        WHERE w.place + (
            SELECT count(*)
            FROM durable_task_executions AS r
            WHERE r.status = 'running'
                AND r.concurrency_limit IS NOT NULL
                AND r.task_id = w.task_id
                AND r.concurrency_key = w.concurrency_key
        ) <= w.key_limit
    ) AS c
    ORDER BY c.priority DESC, c.start_at, c.id
    LIMIT CAST(@row_limit AS INTEGER)
)
RETURNING *;

-- The claim's fallback, used only when the set-based claim failed on some row (a poison row: a
-- value a CHECK refuses): the same candidates in the same order (same two parts), each then
-- claimed alone by ClaimReadyTaskExecutionByExecutionId, so that one bad row fails alone and is
-- set aside while the others still run.
-- name: GetReadyTaskExecutionsToClaim :many
SELECT c.execution_id, c.timeout_ms
FROM (
    SELECT u.execution_id, u.timeout_ms, u.priority, u.start_at, u.id
    FROM (
        SELECT execution_id, timeout_ms, priority, start_at, id
        FROM durable_task_executions INDEXED BY ix_durable_task_executions_ready_unlimited
        WHERE status = 'ready'
            AND concurrency_limit IS NULL
            AND start_at <= CAST(@now AS INTEGER)
            AND (
                CAST(@any_queue AS BOOLEAN)
                OR queue IN (SELECT value FROM json_each(CAST(@queues AS TEXT)))
            )
        ORDER BY priority DESC, start_at, id
        LIMIT CAST(@row_limit AS INTEGER)
    ) AS u
    UNION ALL
    SELECT w.execution_id, w.timeout_ms, w.priority, w.start_at, w.id
    FROM (
        SELECT
            e.execution_id,
            e.timeout_ms,
            e.priority,
            e.start_at,
            e.id,
            e.task_id,
            e.concurrency_key,
            row_number() OVER (
                PARTITION BY e.task_id, e.concurrency_key
                ORDER BY e.priority DESC, e.start_at, e.id
            ) AS place,
            min(e.concurrency_limit) OVER (
                PARTITION BY e.task_id, e.concurrency_key
            ) AS key_limit
        FROM durable_task_executions AS e
            INDEXED BY ix_durable_task_executions_ready_concurrency
        WHERE e.status = 'ready'
            AND e.concurrency_limit IS NOT NULL
            AND e.start_at <= CAST(@now AS INTEGER)
            AND (
                CAST(@any_queue AS BOOLEAN)
                OR e.queue IN (SELECT value FROM json_each(CAST(@queues AS TEXT)))
            )
    ) AS w
    WHERE w.place + (
        SELECT count(*)
        FROM durable_task_executions AS r
        WHERE r.status = 'running'
            AND r.concurrency_limit IS NOT NULL
            AND r.task_id = w.task_id
            AND r.concurrency_key = w.concurrency_key
    ) <= w.key_limit
) AS c
ORDER BY c.priority DESC, c.start_at, c.id
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
