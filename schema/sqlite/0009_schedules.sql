-- Schedules (executor.schedule): one row per schedule id, shared by every executor that defines
-- it. The row is the schedule's state: the next tick to fire (next_tick_at) and the last one
-- fired. An executor fires a tick by moving next_tick_at on with a compare-and-set UPDATE in the
-- same transaction as the execution's insert, so each tick is fired by exactly one executor and
-- a crash can neither lose nor double it.
--
-- The table is named after the executions table (durable_task_executions -> <table>_schedules),
-- so a custom table gets its own schedules. Timestamps are INTEGER epoch milliseconds (UTC).
-- Exactly one of cron (a 5-field cron expression, read in timezone) and every_ms is set.
CREATE TABLE durable_task_executions_schedules (
    schedule_id TEXT NOT NULL PRIMARY KEY,
    task_id TEXT NOT NULL,
    cron TEXT,
    every_ms INTEGER CHECK (typeof(every_ms) IN ('integer', 'null')),
    -- An IANA zone name (zoneinfo); 'UTC' for every_ms schedules.
    timezone TEXT NOT NULL,
    -- The serialized input of every execution the schedule creates (opaque serializer text).
    run_input TEXT NOT NULL,
    next_tick_at INTEGER NOT NULL CHECK (typeof(next_tick_at) = 'integer'),
    last_tick_at INTEGER CHECK (typeof(last_tick_at) IN ('integer', 'null')),
    last_execution_id TEXT,
    created_at INTEGER NOT NULL CHECK (typeof(created_at) = 'integer'),
    updated_at INTEGER NOT NULL CHECK (typeof(updated_at) = 'integer'),
    CHECK ((cron IS NULL) <> (every_ms IS NULL))
);
