-- Schedules (executor.schedule; storage/types.py: the schedule methods of DurableStorageTx).
-- Timestamps are epoch milliseconds.

-- Store a schedule an executor defines in code, at its start. A new schedule is inserted; an
-- existing one takes the new task and input, and the new next_tick_at only if its timing
-- (cron, every_ms, timezone) changed: an unchanged schedule keeps its next tick, so a tick
-- missed while every executor was down is still caught up.
-- name: RegisterTaskSchedule :exec
INSERT INTO durable_task_executions_schedules (
    schedule_id, task_id, cron, every_ms, timezone, run_input, next_tick_at, created_at,
    updated_at
)
VALUES (
    @schedule_id,
    @task_id,
    CAST(sqlc.narg('cron') AS TEXT),
    CAST(sqlc.narg('every_ms') AS INTEGER),
    @timezone,
    @run_input,
    CAST(@next_tick_at AS INTEGER),
    CAST(@now AS INTEGER),
    CAST(@now AS INTEGER)
)
ON CONFLICT (schedule_id) DO UPDATE SET
    task_id = excluded.task_id,
    run_input = excluded.run_input,
    next_tick_at = CASE
        WHEN cron IS excluded.cron AND every_ms IS excluded.every_ms
            AND timezone = excluded.timezone
        THEN next_tick_at
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
WHERE schedule_id IN (sqlc.slice('schedule_ids'))
ORDER BY schedule_id;

-- Fire a tick: move next_tick_at on, only if it is still the tick the caller read (the
-- compare-and-set that lets exactly one executor fire each tick). 1 row: fired; 0: another
-- executor fired it (or the schedule was redefined) first.
-- name: AdvanceTaskSchedule :execrows
UPDATE durable_task_executions_schedules
SET next_tick_at = CAST(@next_tick_at AS INTEGER),
    last_tick_at = CAST(@last_tick_at AS INTEGER),
    last_execution_id = @last_execution_id,
    updated_at = CAST(@updated_at AS INTEGER)
WHERE schedule_id = @schedule_id
    AND next_tick_at = CAST(@expected_next_tick_at AS INTEGER);

-- Every schedule, by id, with the status of the execution its last tick created (NULL when
-- there is none, or it was pruned): the CLI's `schedules`.
-- name: ListTaskSchedules :many
SELECT s.*, e.status AS last_execution_status
FROM durable_task_executions_schedules AS s
LEFT JOIN durable_task_executions AS e ON e.execution_id = s.last_execution_id
ORDER BY s.schedule_id;
