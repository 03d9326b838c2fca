-- Inserting executions. Parameters are parallel arrays, one element per record, named after the
-- column they fill; the i-th elements of every array make up the i-th row. One statement inserts
-- a whole batch (a parent and its children) in a single round trip.
--
-- A duplicate execution_id must raise (unique_violation) so the caller can roll back the
-- transaction and report it: the ON CONFLICT clause names only the idempotency key index, so it
-- skips just a row whose (task_id, idempotency_key) is taken -- by a committed row, by a row this
-- statement inserted before it, or by a concurrent transaction's row (then it waits for that
-- transaction: skipped if it commits, inserted if it rolls back). Such a row is not returned:
-- RETURNING gives the execution ids actually inserted, and the storage reads the holders of the
-- skipped rows' keys in the same transaction (GetTaskExecutionIdsByIdempotencyKeys).
--
-- Nullable columns (root_*, parent_*, is_finalize_task, run_output, output, started_at,
-- finished_at, expires_at, trace_context, idempotency_key) take arrays whose elements may be NULL: the element
-- type of those parameters is `T | None`. JSON columns take jsonb[]; a JSON null element is
-- stored as SQL NULL (NULLIF) so that "absent" has exactly one representation.
--
-- unnest() appears once per array in the select list (sqlc only knows single-argument unnest);
-- PostgreSQL zips equally long arrays row by row and assigns ids in array order.

-- @sync
-- name: InsertTaskExecutions :many
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
    unnest(@idempotency_key::text[]),
    unnest(@priority::integer[])
ON CONFLICT (task_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING execution_id;

-- The executions that hold these (task_id, idempotency_key) pairs (parallel arrays): what an
-- insert whose rows were skipped for a taken key returns instead. Read in the inserting
-- transaction, after the insert: a holder that a concurrent transaction committed meanwhile is
-- visible (READ COMMITTED takes a new snapshot per statement). The IS NOT NULL lets the partial
-- unique index serve the lookup.
-- @sync
-- name: GetTaskExecutionIdsByIdempotencyKeys :many
SELECT t.task_id, t.idempotency_key::text AS idempotency_key, t.execution_id
FROM durable_task_executions AS t
JOIN (
    SELECT
        unnest(@task_ids::text[]) AS task_id,
        unnest(@idempotency_keys::text[]) AS idempotency_key
) AS k ON t.task_id = k.task_id AND t.idempotency_key = k.idempotency_key
WHERE t.idempotency_key IS NOT NULL;
