-- Schedules (executor.schedule; storage/types.py: the schedule methods of DurableStorageTx).

-- Store a schedule an executor defines in code, at its start. A new schedule is inserted; an
-- existing one takes the new task and input, and the new next_tick_at only if its timing
-- (cron, every_ms, timezone) changed: an unchanged schedule keeps its next tick, so a tick
-- missed while every executor was down is still caught up.
-- name: RegisterTaskSchedule :exec
INSERT INTO durable_task_executions_schedules AS s (
    schedule_id, task_id, cron, every_ms, timezone, run_input, next_tick_at, created_at,
    updated_at
)
VALUES (
    @schedule_id::text,
    @task_id::text,
    sqlc.narg('cron')::text,
    sqlc.narg('every_ms')::bigint,
    @timezone::text,
    @run_input::text,
    @next_tick_at::timestamptz,
    @now::timestamptz,
    @now::timestamptz
)
ON CONFLICT (schedule_id) DO UPDATE SET
    task_id = excluded.task_id,
    run_input = excluded.run_input,
    next_tick_at = CASE
        WHEN s.cron IS NOT DISTINCT FROM excluded.cron
            AND s.every_ms IS NOT DISTINCT FROM excluded.every_ms
            AND s.timezone = excluded.timezone
        THEN s.next_tick_at
        ELSE excluded.next_tick_at
    END,
    cron = excluded.cron,
    every_ms = excluded.every_ms,
    timezone = excluded.timezone,
    updated_at = excluded.updated_at;

-- The schedules with these ids (those an executor defines), by id.
-- name: GetTaskSchedules :many
SELECT *
FROM durable_task_executions_schedules
WHERE schedule_id = ANY(@schedule_ids::text[])
ORDER BY schedule_id;

-- Fire a tick: move next_tick_at on, only if it is still the tick the caller read (the
-- compare-and-set that lets exactly one executor fire each tick: a concurrent one waits for
-- the row lock, then finds next_tick_at moved and matches nothing). 1 row: fired; 0: another
-- executor fired it (or the schedule was redefined) first.
-- name: AdvanceTaskSchedule :execrows
UPDATE durable_task_executions_schedules
SET next_tick_at = @next_tick_at::timestamptz,
    last_tick_at = @last_tick_at::timestamptz,
    last_execution_id = @last_execution_id::text,
    updated_at = @updated_at::timestamptz
WHERE schedule_id = @schedule_id::text
    AND next_tick_at = @expected_next_tick_at::timestamptz;

-- Every schedule, by id, with the status of the execution its last tick created (NULL when
-- there is none, or it was pruned): the CLI's `schedules`.
-- name: ListTaskSchedules :many
SELECT s.*, e.status AS last_execution_status
FROM durable_task_executions_schedules AS s
LEFT JOIN durable_task_executions AS e ON e.execution_id = s.last_execution_id
ORDER BY s.schedule_id;
