-- Retention (prune) deletes whole trees of finished executions, oldest first, in batches:
-- * the top-level executions that finished before the cutoff are found in finished_at order by
--   a partial index over top-level rows only (children and active rows are not in it), so a
--   batch reads only candidates however many newer rows the table holds;
-- * a tree's other rows (children, finalize, chain steps at any depth) are found by their root.
CREATE INDEX ix_durable_task_executions_top_level_finished_at
    ON durable_task_executions (finished_at, id)
    WHERE parent_execution_id IS NULL AND finished_at IS NOT NULL;

CREATE INDEX ix_durable_task_executions_root_execution_id
    ON durable_task_executions (root_execution_id);
