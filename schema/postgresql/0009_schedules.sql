-- Schedules (executor.schedule): one row per schedule id, shared by every executor that defines
-- it. The row is the schedule's state: the next tick to fire (next_tick_at) and the last one
-- fired. An executor fires a tick by moving next_tick_at on with a compare-and-set UPDATE in the
-- same transaction as the execution's insert, so each tick is fired by exactly one executor and
-- a crash can neither lose nor double it.
--
-- The table is named after the executions table (durable_task_executions -> <table>_schedules),
-- so a custom table gets its own schedules.
-- Exactly one of cron (a 5-field cron expression, read in timezone) and every_ms is set.
CREATE TABLE durable_task_executions_schedules (
    schedule_id text NOT NULL PRIMARY KEY,
    task_id text NOT NULL,
    cron text,
    every_ms bigint,
    -- An IANA zone name (zoneinfo); 'UTC' for every_ms schedules.
    timezone text NOT NULL,
    -- The serialized input of every execution the schedule creates (opaque serializer text).
    run_input text NOT NULL,
    next_tick_at timestamptz NOT NULL,
    last_tick_at timestamptz,
    last_execution_id text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CHECK ((cron IS NULL) <> (every_ms IS NULL))
);
