-- Queues and per-key concurrency limits (see the README, "Queues and concurrency limits").
--
-- queue: the queue of the execution's task (registered with executor.task(..., queue=...));
-- an executor claims only the queues it serves. Existing rows are in the default queue.
--
-- concurrency_key / concurrency_limit: set together or both NULL (the CHECK). A task registered
-- with concurrency_limit=N runs at most N executions at once per (task_id, concurrency_key),
-- across every executor sharing the file. The row carries the limit its task had when it was
-- enqueued, so that the claim statement enforces it without knowing any process's registry.
-- The key is the one given at enqueue (TaskEnqueueOptions.concurrency_key), or '' for an
-- execution enqueued without one: those share one pool per task (user keys are never '').
-- Existing rows have no limit. (SQLite adds one column per statement, and a table CHECK cannot
-- be added to an existing table: the column CHECKs say the same.)
ALTER TABLE durable_task_executions
    ADD COLUMN queue TEXT NOT NULL DEFAULT 'default' CHECK (typeof(queue) = 'text');

ALTER TABLE durable_task_executions
    ADD COLUMN concurrency_key TEXT
        CHECK (concurrency_key IS NULL OR typeof(concurrency_key) = 'text');

ALTER TABLE durable_task_executions
    ADD COLUMN concurrency_limit INTEGER CHECK (
        (concurrency_limit IS NULL AND concurrency_key IS NULL)
        OR (
            typeof(concurrency_limit) = 'integer'
            AND concurrency_limit >= 1
            AND concurrency_key IS NOT NULL
        )
    );

-- The claim's indexes. Each is partial, over the rows one part of the claim reads, and leads
-- with the status it is restricted to: SQLite's planner (which has no statistics) then prefers
-- it over the general (status, start_at, id) index, which has the same shape but covers every row.
--
-- Executions without a limit, in claim order (priority, then FIFO): the unlimited part of ClaimReadyTaskExecutions
-- stops at its LIMIT, and never walks past executions waiting for their concurrency key.
CREATE INDEX ix_durable_task_executions_ready_unlimited
    ON durable_task_executions (status, priority DESC, start_at, id)
    WHERE status = 'ready' AND concurrency_limit IS NULL;

-- Executions waiting under a limit: the limited part reads them all (to number them per key).
CREATE INDEX ix_durable_task_executions_ready_concurrency
    ON durable_task_executions (status, priority DESC, start_at, id)
    WHERE status = 'ready' AND concurrency_limit IS NOT NULL;

-- "How many executions of this key run now", counted per key the claim considers: only running
-- rows under a limit are in it, so the count reads a handful of entries.
CREATE INDEX ix_durable_task_executions_running_concurrency
    ON durable_task_executions (status, task_id, concurrency_key)
    WHERE status = 'running' AND concurrency_limit IS NOT NULL;
