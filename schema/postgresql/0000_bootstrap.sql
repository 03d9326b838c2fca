-- Bootstrap: run on every migrate, before any numbered migration, so it must stay idempotent.
-- The migrations table records which numbered files have been applied to this table name.
CREATE TABLE IF NOT EXISTS durable_task_executions_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL
);
