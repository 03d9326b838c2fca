-- One row per task execution: top-level, child and finalize executions share this table.
--
-- Every name here that starts with durable_task_executions (or ix_durable_task_executions) is
-- replaced by the configured table name at run time, so a custom table gets its own indexes.
-- Never write the table name inside a string literal.
--
-- Storage conventions:
-- * timestamps are INTEGER epoch milliseconds (UTC);
-- * JSON values are TEXT (a column declared JSON would get NUMERIC affinity and turn the text
--   '1' into the integer 1), checked with json_valid;
-- * booleans are declared BOOLEAN so that the generated code types them as bool; SQLite stores
--   them as 0/1, which the CHECKs enforce.
-- The table is not STRICT: sqlc parses STRICT, but STRICT tables reject the BOOLEAN type name.
-- The typeof() CHECKs give the same protection where a wrong type would break ordering or
-- comparisons (text in an integer timestamp column compares greater than every number).
CREATE TABLE durable_task_executions (
    -- Alias of the rowid: insertion order, used to break ordering ties.
    id INTEGER PRIMARY KEY,
    -- root_task: both set or both NULL (a top-level execution has no root).
    root_task_id TEXT,
    root_execution_id TEXT,
    -- parent_task: all three set or all NULL; is_finalize_task only means something with a parent.
    parent_task_id TEXT,
    parent_execution_id TEXT,
    is_finalize_task BOOLEAN CHECK (is_finalize_task IN (0, 1)),
    task_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    retry_options TEXT NOT NULL CHECK (json_valid(retry_options)),
    sleep_ms_before_run INTEGER NOT NULL CHECK (typeof(sleep_ms_before_run) = 'integer'),
    timeout_ms INTEGER NOT NULL CHECK (typeof(timeout_ms) = 'integer'),
    -- Serialized payloads are opaque text: the serializer owns their format.
    run_input TEXT NOT NULL,
    run_output TEXT,
    output TEXT,
    children_tasks_completed_count INTEGER NOT NULL
        CHECK (typeof(children_tasks_completed_count) = 'integer'),
    children_tasks TEXT CHECK (children_tasks IS NULL OR json_valid(children_tasks)),
    children_tasks_errors TEXT
        CHECK (children_tasks_errors IS NULL OR json_valid(children_tasks_errors)),
    finalize_task TEXT CHECK (finalize_task IS NULL OR json_valid(finalize_task)),
    finalize_task_error TEXT
        CHECK (finalize_task_error IS NULL OR json_valid(finalize_task_error)),
    error TEXT CHECK (error IS NULL OR json_valid(error)),
    status TEXT NOT NULL CHECK (
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
    is_closed BOOLEAN NOT NULL CHECK (is_closed IN (0, 1)),
    needs_promise_cancellation BOOLEAN NOT NULL CHECK (needs_promise_cancellation IN (0, 1)),
    retry_attempts INTEGER NOT NULL CHECK (typeof(retry_attempts) = 'integer'),
    start_at INTEGER NOT NULL CHECK (typeof(start_at) = 'integer'),
    started_at INTEGER CHECK (typeof(started_at) IN ('integer', 'null')),
    finished_at INTEGER CHECK (typeof(finished_at) IN ('integer', 'null')),
    expires_at INTEGER CHECK (typeof(expires_at) IN ('integer', 'null')),
    -- Optimistic-locking counter: a guarded update matches only the version it read.
    version INTEGER NOT NULL CHECK (typeof(version) = 'integer'),
    created_at INTEGER NOT NULL CHECK (typeof(created_at) = 'integer'),
    updated_at INTEGER NOT NULL CHECK (typeof(updated_at) = 'integer'),
    CHECK ((root_task_id IS NULL) = (root_execution_id IS NULL)),
    CHECK (
        (parent_task_id IS NULL) = (parent_execution_id IS NULL)
        AND (parent_execution_id IS NULL) = (is_finalize_task IS NULL)
    )
);

CREATE UNIQUE INDEX ix_durable_task_executions_execution_id
    ON durable_task_executions (execution_id);

-- Expiring running executions and closing finished ones: status IN (..) AND is_closed = ..
-- AND expires_at < ..
CREATE INDEX ix_durable_task_executions_status_is_closed_expires_at
    ON durable_task_executions (status, is_closed, expires_at);

-- Claiming ready executions in FIFO order: status IN (..) AND start_at < .. ORDER BY start_at,
-- id. (SQLite appends the rowid to every index anyway; naming id keeps both dialects alike.)
CREATE INDEX ix_durable_task_executions_status_start_at_id
    ON durable_task_executions (status, start_at, id);

-- Finding the children (and finalize execution) of a parent.
CREATE INDEX ix_durable_task_executions_parent_execution_id
    ON durable_task_executions (parent_execution_id);
