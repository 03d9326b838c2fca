-- The PostgreSQL migration of this number sets storage parameters for the queue table (fillfactor,
-- autovacuum thresholds). SQLite has no equivalent stored in the schema: a page freed by a
-- delete goes to the freelist and is reused by the next inserts, so with retention the file
-- stops growing at the size of its busiest window; `VACUUM` (see the README, "Running it for
-- years") returns the free pages to the file system after a backlog was pruned. The settings
-- that matter (WAL, synchronous, busy timeout) are per connection, set when the storage opens
-- one. This migration only keeps the version numbers of both dialects in step.
SELECT 1;
