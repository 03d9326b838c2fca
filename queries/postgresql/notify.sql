-- Waking the executors of other processes (LISTEN/NOTIFY).

-- @sync
-- name: NotifyReady :exec
-- Sent in the transaction that inserted executions ready to run now: PostgreSQL delivers the
-- notice at commit (never after a rollback) to every session that LISTENs on the channel, and
-- folds repeated notices of one transaction into one. The caller derives the channel from the
-- table name; LISTEN itself is a utility command sqlc cannot compile, so the listener sends it.
SELECT pg_notify(@channel::text, '');
