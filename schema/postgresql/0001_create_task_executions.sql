-- One row per task execution: top-level, child and finalize executions share this table.
--
-- Every name here that starts with durable_task_executions (or ix_durable_task_executions) is
-- replaced by the configured table name at run time, so a custom table gets its own constraints
-- and indexes. Never write the table name inside a string literal.
CREATE TABLE durable_task_executions (
    -- Surrogate key: insertion order, used to break ordering ties.
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- root_task: both set or both NULL (a top-level execution has no root).
    root_task_id text,
    root_execution_id text,
    -- parent_task: all three set or all NULL; is_finalize_task only means something with a parent.
    parent_task_id text,
    parent_execution_id text,
    is_finalize_task boolean,
    task_id text NOT NULL,
    execution_id text NOT NULL,
    retry_options jsonb NOT NULL,
    sleep_ms_before_run bigint NOT NULL,
    timeout_ms bigint NOT NULL,
    -- Serialized payloads are opaque text: the serializer owns their format.
    run_input text NOT NULL,
    run_output text,
    output text,
    children_tasks_completed_count integer NOT NULL,
    children_tasks jsonb,
    children_tasks_errors jsonb,
    finalize_task jsonb,
    finalize_task_error jsonb,
    error jsonb,
    status text NOT NULL,
    is_closed boolean NOT NULL,
    needs_promise_cancellation boolean NOT NULL,
    retry_attempts integer NOT NULL,
    start_at timestamptz NOT NULL,
    started_at timestamptz,
    finished_at timestamptz,
    expires_at timestamptz,
    -- Optimistic-locking counter: a guarded update matches only the version it read.
    version bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CONSTRAINT durable_task_executions_status_check CHECK (
        status IN (
            'ready',
            'running',
            'waiting_for_children_tasks',
            'waiting_for_finalize_task',
            'failed',
            'timed_out',
            'children_tasks_failed',
            'finalize_task_failed',
            'completed',
            'cancelled'
        )
    ),
    CONSTRAINT durable_task_executions_root_task_check CHECK (
        (root_task_id IS NULL) = (root_execution_id IS NULL)
    ),
    CONSTRAINT durable_task_executions_parent_task_check CHECK (
        (parent_task_id IS NULL) = (parent_execution_id IS NULL)
        AND (parent_execution_id IS NULL) = (is_finalize_task IS NULL)
    )
);

CREATE UNIQUE INDEX ix_durable_task_executions_execution_id
    ON durable_task_executions (execution_id);

-- Expiring running executions and closing finished ones: status = ANY(..) AND is_closed = ..
-- AND expires_at < ..
CREATE INDEX ix_durable_task_executions_status_is_closed_expires_at
    ON durable_task_executions (status, is_closed, expires_at);

-- Claiming ready executions in FIFO order: status = ANY(..) AND start_at < .. ORDER BY start_at,
-- id. The trailing id lets one status be read in exactly that order without a sort.
CREATE INDEX ix_durable_task_executions_status_start_at_id
    ON durable_task_executions (status, start_at, id);

-- Finding the children (and finalize execution) of a parent.
CREATE INDEX ix_durable_task_executions_parent_execution_id
    ON durable_task_executions (parent_execution_id);

-- No partial indexes: every filter in the queries is a bind parameter (statuses, is_closed, ..),
-- so the planner could not prove a partial index's predicate for a generic plan.
