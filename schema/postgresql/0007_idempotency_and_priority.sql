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

-- The claim orders by priority DESC, start_at, id: its indexes (partial, per part of the claim)
-- are created with the queue columns in 0008.
