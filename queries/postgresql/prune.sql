-- Retention: deleting whole trees of finished executions (storage/types.py: PruningStorage).
-- The storage walks the candidates in (finished_at, id) order, a batch per transaction, so no
-- statement holds many locks or binds more than one batch of ids.

-- Up to row_limit top-level executions after the (after_finished_at, after_id) cursor that
-- finished before finished_before with one of the statuses, are closed, and whose tree has no
-- active or unclosed execution left. Locked rows are skipped (another pruner has them).
-- name: GetPrunableRoots :many
SELECT r.id, r.execution_id, r.finished_at
FROM durable_task_executions AS r
WHERE r.parent_execution_id IS NULL
    AND r.finished_at IS NOT NULL
    AND r.finished_at < @finished_before::timestamptz
    AND (
        r.finished_at > @after_finished_at::timestamptz
        OR (r.finished_at = @after_finished_at::timestamptz AND r.id > @after_id::bigint)
    )
    AND r.is_closed
    AND r.status = ANY(@statuses::text[])
    AND NOT EXISTS (
        SELECT 1
        FROM durable_task_executions AS d
        WHERE d.root_execution_id = r.execution_id
            AND (
                NOT d.is_closed
                OR d.status IN (
                    'ready', 'running', 'waiting_for_children_tasks', 'waiting_for_finalize_task'
                )
            )
    )
ORDER BY r.finished_at, r.id
LIMIT @row_limit::integer
FOR UPDATE OF r SKIP LOCKED;

-- How many executions the trees of these roots hold, per status (a dry run's report).
-- name: CountExecutionTrees :many
SELECT status, count(*)::bigint AS execution_count
FROM durable_task_executions
WHERE execution_id = ANY(@root_execution_ids::text[])
    OR root_execution_id = ANY(@root_execution_ids::text[])
GROUP BY status;

-- Deletes the trees of these roots: the roots and every execution under them.
-- name: DeleteExecutionTrees :many
WITH deleted AS (
    DELETE FROM durable_task_executions
    WHERE execution_id = ANY(@root_execution_ids::text[])
        OR root_execution_id = ANY(@root_execution_ids::text[])
    RETURNING status
)
SELECT status, count(*)::bigint AS execution_count
FROM deleted
GROUP BY status;

-- name: TryLockPruning :one
-- Automatic retention's one-pruner-at-a-time lock: a transaction-scoped advisory lock, released
-- at commit or rollback, taken without waiting (false: another executor is pruning). The caller
-- derives lock_key from the table name (distinct from the migration lock's key); advisory locks
-- are database-wide, so the schema the table lives in (the first of the search path, where
-- open_storage creates it) is mixed in: the same table name in two schemas prunes independently.
SELECT pg_try_advisory_xact_lock(
    @lock_key::bigint # hashtextextended(current_schema(), 0)
) AS locked;
