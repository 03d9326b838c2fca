-- The migration runner's bookkeeping. Numbered schema files are applied in one transaction that
-- first takes LockMigrations, so migrators starting at the same time run one after another and
-- each sees what the previous one recorded.

-- name: LockMigrations :exec
-- A transaction-scoped advisory lock, released at commit or rollback. The caller derives
-- lock_key from the table name, so different tables migrate independently.
SELECT pg_advisory_xact_lock(@lock_key::bigint);

-- name: GetAppliedMigrationVersions :many
SELECT version
FROM durable_task_executions_migrations
ORDER BY version;

-- name: InsertAppliedMigration :exec
INSERT INTO durable_task_executions_migrations (version, name, applied_at)
VALUES (@version, @name, @applied_at);
