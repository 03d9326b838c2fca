-- Idempotency keys and priorities (TaskEnqueueOptions(idempotency_key=..., priority=...)).
--
-- idempotency_key: set only on top-level executions enqueued with a key; NULL on every other row
-- (children, finalize executions, existing rows). A (task_id, idempotency_key) pair names at most
-- one execution, whatever its status: the unique index below is what makes that hold, and the
-- insert (queries/sqlite/insert.sql) skips a row whose key is taken (ON CONFLICT ... DO NOTHING)
-- instead of failing. Partial: keyless rows cost the index nothing. The key is freed when its
-- execution's row is deleted (retention).
ALTER TABLE durable_task_executions
    ADD COLUMN idempotency_key TEXT
        CHECK (idempotency_key IS NULL OR typeof(idempotency_key) = 'text');

CREATE UNIQUE INDEX ix_durable_task_executions_task_id_idempotency_key
    ON durable_task_executions (task_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- priority: higher runs first; within a priority, FIFO by start_at (then insertion). Existing
-- rows start at 0, the default. The CHECK keeps text out: it would sort above every number.
ALTER TABLE durable_task_executions
    ADD COLUMN priority INTEGER NOT NULL DEFAULT 0 CHECK (typeof(priority) = 'integer');

-- The claim (queries/sqlite/claim.sql) reads status = 'ready' AND start_at <= now ORDER BY
-- priority DESC, start_at, id LIMIT n: with the literal 'ready' as the leading key this index
-- returns ready rows in that order, so the LIMIT stops the scan early and no sort is needed.
-- Not partial: SQLite's planner (no statistics) then prefers it to the (status, start_at, id)
-- index plus a sort; with a partial index it chose the latter. ix_..._status_start_at_id stays:
-- the inspection query for the oldest ready execution (start_at order, across priorities)
-- reads it.
CREATE INDEX ix_durable_task_executions_status_priority_start_at_id
    ON durable_task_executions (status, priority DESC, start_at, id);
