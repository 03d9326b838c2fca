-- Bootstrap: run on every migrate, before any numbered migration, so it must stay idempotent.
-- The migrations table records which numbered files have been applied to this table name.
-- applied_at is epoch milliseconds, like every timestamp in the SQLite schema.
CREATE TABLE IF NOT EXISTS durable_task_executions_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at INTEGER NOT NULL
);
