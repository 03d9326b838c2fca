-- `durable-execution rerun ID` enqueues a new execution of a finished execution's task with the
-- same input; the new row remembers which execution it reruns, so that `show` can link the two.
-- NULL for every execution that is not a rerun (all existing rows).
ALTER TABLE durable_task_executions
    ADD COLUMN rerun_of_execution_id TEXT;
