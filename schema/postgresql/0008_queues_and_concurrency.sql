-- Queues and per-key concurrency limits (see the README, "Queues and concurrency limits").
--
-- queue: the queue of the execution's task (registered with executor.task(..., queue=...));
-- an executor claims only the queues it serves. Existing rows are in the default queue.
--
-- concurrency_key / concurrency_limit: set together or both NULL (the CHECK). A task registered
-- with concurrency_limit=N runs at most N executions at once per (task_id, concurrency_key),
-- across every executor sharing the table. The row carries the limit its task had when it was
-- enqueued, so that the claim statement enforces it without knowing any process's registry.
-- The key is the one given at enqueue (TaskEnqueueOptions.concurrency_key), or '' for an
-- execution enqueued without one: those share one pool per task (user keys are never '').
-- Existing rows have no limit.
ALTER TABLE durable_task_executions
    ADD COLUMN queue text NOT NULL DEFAULT 'default',
    ADD COLUMN concurrency_key text,
    ADD COLUMN concurrency_limit integer,
    ADD CONSTRAINT durable_task_executions_concurrency_check CHECK (
        (concurrency_key IS NULL) = (concurrency_limit IS NULL)
        AND (concurrency_limit IS NULL OR concurrency_limit >= 1)
    );

-- The claim's indexes, each partial over the rows one part of the claim reads. (The leading
-- status column, constant in each, keeps their shapes the same as SQLite's where it can.)
--
-- Executions without a limit, in claim order (priority, then FIFO): the unlimited part of ClaimReadyTaskExecutions
-- stops at its LIMIT, and never walks past executions waiting for their concurrency key.
CREATE INDEX ix_durable_task_executions_ready_unlimited
    ON durable_task_executions (status, priority DESC, start_at, id)
    WHERE status = 'ready' AND concurrency_limit IS NULL;

-- Executions waiting under a limit, per key in claim order (priority, then FIFO): LockReadyConcurrencyKeys groups
-- them by key, and the limited part of the claim reads each locked key's oldest ones. The
-- INCLUDE columns let the grouping read the index alone (an index-only scan), not the table.
CREATE INDEX ix_durable_task_executions_ready_concurrency
    ON durable_task_executions (task_id, concurrency_key, priority DESC, start_at, id)
    INCLUDE (concurrency_limit, queue)
    WHERE status = 'ready' AND concurrency_limit IS NOT NULL;

-- "How many executions of this key run now", counted per key the claim considers: only running
-- rows under a limit are in it, so the count reads a handful of entries.
CREATE INDEX ix_durable_task_executions_running_concurrency
    ON durable_task_executions (status, task_id, concurrency_key)
    WHERE status = 'running' AND concurrency_limit IS NOT NULL;
