-- The migration runner's bookkeeping. There is no lock query: the runner applies migrations in
-- a BEGIN IMMEDIATE transaction, which already makes concurrent migrators run one at a time.

-- name: GetAppliedMigrationVersions :many
SELECT version
FROM durable_task_executions_migrations
ORDER BY version;

-- name: InsertAppliedMigration :exec
INSERT INTO durable_task_executions_migrations (version, name, applied_at)
VALUES (@version, @name, @applied_at);
