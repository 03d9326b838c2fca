-- Inserting executions, one row per call: the storage runs it once per record inside its
-- transaction (SQLite statements are in-process calls, so a batch costs no round trips).
-- Parameters are named after the columns they fill; their types and nullability come from them.
--
-- A duplicate execution_id must raise (IntegrityError) so the caller can roll back the
-- transaction and report it: the ON CONFLICT clause names only the idempotency key index, so it
-- skips just a row whose (task_id, idempotency_key) is already taken (0 rows changed); the
-- storage then reads the holder (GetTaskExecutionIdByIdempotencyKey).

-- name: InsertTaskExecution :execrows
INSERT INTO durable_task_executions (
    root_task_id,
    root_execution_id,
    parent_task_id,
    parent_execution_id,
    is_finalize_task,
    task_id,
    execution_id,
    retry_options,
    sleep_ms_before_run,
    timeout_ms,
    run_input,
    run_output,
    output,
    children_tasks_completed_count,
    children_tasks,
    children_tasks_errors,
    finalize_task,
    finalize_task_error,
    error,
    status,
    is_closed,
    needs_promise_cancellation,
    retry_attempts,
    lease_expiries,
    start_at,
    started_at,
    finished_at,
    expires_at,
    version,
    created_at,
    updated_at,
    rerun_of_execution_id,
    trace_context,
    idempotency_key,
    priority
) VALUES (
    @root_task_id,
    @root_execution_id,
    @parent_task_id,
    @parent_execution_id,
    @is_finalize_task,
    @task_id,
    @execution_id,
    @retry_options,
    @sleep_ms_before_run,
    @timeout_ms,
    @run_input,
    @run_output,
    @output,
    @children_tasks_completed_count,
    @children_tasks,
    @children_tasks_errors,
    @finalize_task,
    @finalize_task_error,
    @error,
    @status,
    @is_closed,
    @needs_promise_cancellation,
    @retry_attempts,
    @lease_expiries,
    @start_at,
    @started_at,
    @finished_at,
    @expires_at,
    @version,
    @created_at,
    @updated_at,
    @rerun_of_execution_id,
    @trace_context,
    @idempotency_key,
    @priority
)
ON CONFLICT (task_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING;

-- name: GetTaskExecutionIdByIdempotencyKey :one
-- The execution that holds this (task_id, idempotency_key): what an insert skipped for a taken
-- key returns instead. The IS NOT NULL lets the partial unique index serve the lookup.
SELECT execution_id
FROM durable_task_executions
WHERE task_id = @task_id
    AND idempotency_key = @idempotency_key
    AND idempotency_key IS NOT NULL;

-- name: GetExistingExecutionIds :many
-- Which of these execution ids are already stored: the insert refuses the whole batch before
-- writing anything if any is (the transaction holds the write lock, so none can appear between
-- this check and the inserts).
SELECT execution_id
FROM durable_task_executions
WHERE execution_id IN (sqlc.slice('execution_ids'))
ORDER BY id;
