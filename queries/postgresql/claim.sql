-- The claim and the lease renewal (storage/types.py: claim_ready_task_executions,
-- renew_task_execution_leases), each one set-based statement, and the claim's fallback for
-- poison rows.

-- Per-key concurrency limits, step 1 of the claim (storage/_pg_claims.py; README, "Queues and
-- concurrency limits"). A limit must hold across every executor, but two claims running at once
-- under READ COMMITTED would both count the same running rows and both take the last slot. So
-- a claim first takes a transaction-scoped advisory lock per (task_id, concurrency_key) it means
-- to claim from, and only then, in a second statement (with a snapshot taken after the lock, so
-- that it sees every claim of that key committed before), counts and claims. Two claims of one
-- key are serialised; claims of other keys and of unlimited executions never wait.
--
-- The keys considered: those with due ready executions in the served queues (@any_queue: all)
-- that have a free slot as far as this statement's snapshot sees (step 2 recounts), the key
-- with the highest waiting priority first (then the oldest), at most row_limit of them (a claim cannot use more). A key at its
-- limit is left out before that LIMIT, so keys at their limit never crowd out the others. Its
-- limit is the smallest its waiting rows carry (the task's limit when each was enqueued).
-- pg_try_advisory_xact_lock never waits: a key another claim is working on is skipped, like a
-- row under SKIP LOCKED, and the rest are returned (locked until this transaction ends). The
-- lock key mixes in lock_key (derived from the table name by the storage) and the schema, as
-- the pruning lock does; a hash collision between two keys only serialises their claims.
-- name: LockReadyConcurrencyKeys :many
SELECT
    k.task_id::text AS task_id,
    k.concurrency_key::text AS concurrency_key,
    k.concurrency_limit::integer AS concurrency_limit
FROM (
    SELECT
        r.task_id,
        r.concurrency_key,
        min(r.concurrency_limit) AS concurrency_limit,
        max(r.priority) AS head_priority,
        min(r.start_at) AS head_start_at
    FROM durable_task_executions AS r
    WHERE r.status = 'ready'
        AND r.concurrency_limit IS NOT NULL
        AND r.start_at <= @now::timestamptz
        AND (@any_queue::boolean OR r.queue = ANY(@queues::text[]))
    GROUP BY r.task_id, r.concurrency_key
    HAVING (
        SELECT count(*)
        FROM durable_task_executions AS w
        WHERE w.status = 'running'
            AND w.concurrency_limit IS NOT NULL
            AND w.task_id = r.task_id
            AND w.concurrency_key = r.concurrency_key
    ) < min(r.concurrency_limit)
    ORDER BY head_priority DESC, head_start_at, r.task_id, r.concurrency_key
    LIMIT @row_limit::integer
) AS k
WHERE pg_try_advisory_xact_lock(
    @lock_key::bigint
    # hashtextextended(current_schema(), 0)
    # hashtextextended(k.task_id || chr(31) || k.concurrency_key, 0)
);

-- Claims up to row_limit due ready executions in one statement, highest priority first, FIFO
-- within a priority (start_at, then insertion), skipping rows other transactions hold, and moves them to running with a lease of
-- lease_ms (renewed by the executor while it runs). Only executions of the served queues
-- (@any_queue: every queue). Two parts, merged in that order under the outer LIMIT:
-- * executions without a concurrency limit, read in order from the ready_unlimited index, so
--   the LIMIT stops the scan early;
-- * per key locked by LockReadyConcurrencyKeys (the parallel key_* arrays, one element per key;
--   empty when none), its first waiting executions in that order, as many as the key has free slots: its
--   limit minus its running executions, counted now, under the key's lock. Executions of keys
--   not locked are not claimed (a later claim takes them), whatever their place in the FIFO.
-- The locking subqueries sit in FROM: PostgreSQL refuses FOR UPDATE directly in a UNION.
-- RETURNING order is unspecified: the storage sorts the rows.
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
    SELECT c.id
    FROM (
        SELECT u.id, u.priority, u.start_at
        FROM (
            SELECT id, priority, start_at
            FROM durable_task_executions
            WHERE status = 'ready'
                AND concurrency_limit IS NULL
                AND start_at <= @now::timestamptz
                AND (@any_queue::boolean OR queue = ANY(@queues::text[]))
            ORDER BY priority DESC, start_at, id
            LIMIT @row_limit::integer
            FOR UPDATE SKIP LOCKED
        ) AS u
        UNION ALL
        SELECT l.id, l.priority, l.start_at
        FROM (
            SELECT
                unnest(@key_task_ids::text[]) AS task_id,
                unnest(@key_concurrency_keys::text[]) AS concurrency_key,
                unnest(@key_concurrency_limits::integer[]) AS concurrency_limit
        ) AS k
        CROSS JOIN LATERAL (
            SELECT e.id, e.priority, e.start_at
            FROM durable_task_executions AS e
            WHERE e.status = 'ready'
                AND e.concurrency_limit IS NOT NULL
                AND e.task_id = k.task_id
                AND e.concurrency_key = k.concurrency_key
                AND e.start_at <= @now::timestamptz
                AND (@any_queue::boolean OR e.queue = ANY(@queues::text[]))
            ORDER BY e.priority DESC, e.start_at, e.id
            LIMIT greatest(0, k.concurrency_limit - (
                SELECT count(*)
                FROM durable_task_executions AS w
                WHERE w.status = 'running'
                    AND w.concurrency_limit IS NOT NULL
                    AND w.task_id = k.task_id
                    AND w.concurrency_key = k.concurrency_key
            ))
            FOR UPDATE SKIP LOCKED
        ) AS l
    ) AS c
    ORDER BY c.priority DESC, c.start_at, c.id
    LIMIT @row_limit::integer
)
RETURNING *;

-- The claim's fallback, used only when the set-based claim failed on some row (a poison row:
-- a stored value the database refuses to compute with): the same candidates in the same
-- order (the same two parts, under the same key locks), locked, each then claimed alone (in a
-- savepoint) by ClaimReadyTaskExecutionByExecutionId, so that one bad row fails alone and is
-- set aside while the others still run.
-- name: GetReadyTaskExecutionsToClaim :many
SELECT c.execution_id, c.timeout_ms
FROM (
    SELECT u.execution_id, u.timeout_ms, u.priority, u.start_at, u.id
    FROM (
        SELECT execution_id, timeout_ms, priority, start_at, id
        FROM durable_task_executions
        WHERE status = 'ready'
            AND concurrency_limit IS NULL
            AND start_at <= @now::timestamptz
            AND (@any_queue::boolean OR queue = ANY(@queues::text[]))
        ORDER BY priority DESC, start_at, id
        LIMIT @row_limit::integer
        FOR UPDATE SKIP LOCKED
    ) AS u
    UNION ALL
    SELECT l.execution_id, l.timeout_ms, l.priority, l.start_at, l.id
    FROM (
        SELECT
            unnest(@key_task_ids::text[]) AS task_id,
            unnest(@key_concurrency_keys::text[]) AS concurrency_key,
            unnest(@key_concurrency_limits::integer[]) AS concurrency_limit
    ) AS k
    CROSS JOIN LATERAL (
        SELECT e.execution_id, e.timeout_ms, e.priority, e.start_at, e.id
        FROM durable_task_executions AS e
        WHERE e.status = 'ready'
            AND e.concurrency_limit IS NOT NULL
            AND e.task_id = k.task_id
            AND e.concurrency_key = k.concurrency_key
            AND e.start_at <= @now::timestamptz
            AND (@any_queue::boolean OR e.queue = ANY(@queues::text[]))
        ORDER BY e.priority DESC, e.start_at, e.id
        LIMIT greatest(0, k.concurrency_limit - (
            SELECT count(*)
            FROM durable_task_executions AS w
            WHERE w.status = 'running'
                AND w.concurrency_limit IS NOT NULL
                AND w.task_id = k.task_id
                AND w.concurrency_key = k.concurrency_key
        ))
        FOR UPDATE SKIP LOCKED
    ) AS l
) AS c
ORDER BY c.priority DESC, c.start_at, c.id
LIMIT @row_limit::integer;

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
