-- Inserting executions. Parameters are parallel arrays, one element per record, named after the
-- column they fill; the i-th elements of every array make up the i-th row. One statement inserts
-- a whole batch (a parent and its children) in a single round trip.
--
-- There is no ON CONFLICT: a duplicate execution_id must raise (unique_violation) so the caller
-- can roll back the transaction and report it.
--
-- Nullable columns (root_*, parent_*, is_finalize_task, run_output, output, started_at,
-- finished_at, expires_at, trace_context, concurrency_*) take arrays whose elements may be
-- NULL: the element type of those parameters is `T | None`. JSON columns take jsonb[]; a JSON null element is
-- stored as SQL NULL (NULLIF) so that "absent" has exactly one representation.
--
-- unnest() appears once per array in the select list (sqlc only knows single-argument unnest);
-- PostgreSQL zips equally long arrays row by row and assigns ids in array order.

-- @sync
-- name: InsertTaskExecutions :execrows
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
    queue,
    concurrency_key,
    concurrency_limit
)
SELECT
    unnest(@root_task_id::text[]),
    unnest(@root_execution_id::text[]),
    unnest(@parent_task_id::text[]),
    unnest(@parent_execution_id::text[]),
    unnest(@is_finalize_task::boolean[]),
    unnest(@task_id::text[]),
    unnest(@execution_id::text[]),
    unnest(@retry_options::jsonb[]),
    unnest(@sleep_ms_before_run::bigint[]),
    unnest(@timeout_ms::bigint[]),
    unnest(@run_input::text[]),
    unnest(@run_output::text[]),
    unnest(@output::text[]),
    unnest(@children_tasks_completed_count::integer[]),
    NULLIF(unnest(@children_tasks::jsonb[]), 'null'::jsonb),
    NULLIF(unnest(@children_tasks_errors::jsonb[]), 'null'::jsonb),
    NULLIF(unnest(@finalize_task::jsonb[]), 'null'::jsonb),
    NULLIF(unnest(@finalize_task_error::jsonb[]), 'null'::jsonb),
    NULLIF(unnest(@error::jsonb[]), 'null'::jsonb),
    unnest(@status::text[]),
    unnest(@is_closed::boolean[]),
    unnest(@needs_promise_cancellation::boolean[]),
    unnest(@retry_attempts::integer[]),
    unnest(@lease_expiries::integer[]),
    unnest(@start_at::timestamptz[]),
    unnest(@started_at::timestamptz[]),
    unnest(@finished_at::timestamptz[]),
    unnest(@expires_at::timestamptz[]),
    unnest(@version::bigint[]),
    unnest(@created_at::timestamptz[]),
    unnest(@updated_at::timestamptz[]),
    unnest(@rerun_of_execution_id::text[]),
    unnest(@trace_context::text[]),
    unnest(@queue::text[]),
    unnest(@concurrency_key::text[]),
    unnest(@concurrency_limit::integer[]);
