-- How many times this execution's lease expired (its executor presumably died mid-run). The
-- lease expirer increments it when it makes the row ready again and fails the execution once the
-- executor's max_lease_expiries is reached, so a task that kills its process cannot be re-run
-- forever. Existing rows start at 0: nothing was counted before this migration.
ALTER TABLE durable_task_executions
    ADD COLUMN lease_expiries INTEGER NOT NULL DEFAULT 0
        CHECK (typeof(lease_expiries) = 'integer');
