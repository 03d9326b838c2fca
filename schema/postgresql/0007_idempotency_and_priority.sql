-- Idempotency keys and priorities (TaskEnqueueOptions(idempotency_key=..., priority=...)).
--
-- idempotency_key: set only on top-level executions enqueued with a key; NULL on every other row
-- (children, finalize executions, existing rows). A (task_id, idempotency_key) pair names at most
-- one execution, whatever its status: the unique index below is what makes that hold across
-- processes, and the insert (queries/postgresql/insert.sql) skips a row whose key is taken
-- (ON CONFLICT ... DO NOTHING) instead of failing. Partial: keyless rows, the vast majority, cost
-- the index nothing. The key is freed when its execution's row is deleted (retention).
ALTER TABLE durable_task_executions
    ADD COLUMN idempotency_key text;

CREATE UNIQUE INDEX ix_durable_task_executions_task_id_idempotency_key
    ON durable_task_executions (task_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- priority: higher runs first; within a priority, FIFO by start_at (then insertion). Existing
-- rows start at 0, the default.
ALTER TABLE durable_task_executions
    ADD COLUMN priority integer NOT NULL DEFAULT 0;

-- The claim (queries/postgresql/claim.sql) reads status = 'ready' AND start_at <= now ORDER BY
-- priority DESC, start_at, id LIMIT n. With the literal 'ready' as the leading key this index
-- returns ready rows in exactly that order, so the LIMIT stops the scan after n due rows (rows
-- not yet due are passed over as an index condition; finished rows are never visited). Not
-- partial, like the other indexes here (see 0001), and so that SQLite's planner, which has no
-- statistics, prefers it to the (status, start_at, id) index plus a sort. ix_..._status_start_at_id
-- stays: the inspection query for the oldest ready execution (start_at order, across
-- priorities) reads it.
CREATE INDEX ix_durable_task_executions_status_priority_start_at_id
    ON durable_task_executions (status, priority DESC, start_at, id);
