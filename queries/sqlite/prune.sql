-- Retention: deleting whole trees of finished executions (storage/types.py: PruningStorage).
-- The storage walks the candidates in (finished_at, id) order, a batch per transaction, so no
-- statement holds the write lock for long or binds more than one batch of ids (twice).
-- Timestamps are epoch milliseconds.

-- Up to row_limit top-level executions after the (after_finished_at, after_id) cursor that
-- finished before finished_before with one of the statuses, are closed, and whose tree has no
-- active or unclosed execution left.
-- name: GetPrunableRoots :many
SELECT r.id, r.execution_id, CAST(r.finished_at AS INTEGER) AS finished_at
FROM durable_task_executions AS r INDEXED BY ix_durable_task_executions_top_level_finished_at
WHERE r.parent_execution_id IS NULL
    AND r.finished_at IS NOT NULL
    AND r.finished_at < CAST(@finished_before AS INTEGER)
    AND (
        r.finished_at > CAST(@after_finished_at AS INTEGER)
        OR (
            r.finished_at = CAST(@after_finished_at AS INTEGER)
            AND r.id > CAST(@after_id AS INTEGER)
        )
    )
    AND r.is_closed = 1
    AND r.status IN (sqlc.slice('statuses'))
    AND NOT EXISTS (
        SELECT 1
        FROM durable_task_executions AS d
        WHERE d.root_execution_id = r.execution_id
            AND (
                d.is_closed = 0
                OR d.status IN (
                    'ready', 'running', 'waiting_for_children_tasks', 'waiting_for_finalize_task'
                )
            )
    )
ORDER BY r.finished_at, r.id
LIMIT CAST(@row_limit AS INTEGER);

-- How many executions the trees of these roots hold, per status (a dry run's report).
-- name: CountExecutionTrees :many
SELECT status, CAST(count(*) AS INTEGER) AS execution_count
FROM durable_task_executions
WHERE execution_id IN (sqlc.slice('root_execution_ids'))
    OR root_execution_id IN (sqlc.slice('tree_root_execution_ids'))
GROUP BY status;

-- Deletes the trees of these roots: the roots and every execution under them. SQLite has no
-- DELETE inside a WITH, so each deleted row's status comes back and the storage counts them.
-- name: DeleteExecutionTrees :many
DELETE FROM durable_task_executions
WHERE execution_id IN (sqlc.slice('root_execution_ids'))
    OR root_execution_id IN (sqlc.slice('tree_root_execution_ids'))
RETURNING status;
