-- The target index ends with the user: streams_target becomes
-- (target_type, target_id, user_id). The writer finds each stream of a
-- group commit by its (user, target) under the head lock, and so do
-- Snapshot's reads; with streams_target on (target_type, target_id) alone
-- the planner had two indexes for that lookup, which it costs alike on a
-- table without statistics (autovacuum off, a fresh import), and it took
-- the target one, reading every stream of a popular target for each
-- append (44 ms at 40,000 streams). Now either index it takes finds the
-- row by all three columns, whatever the statistics; reads by target use
-- the new index's first two columns as they used the old one.
-- Built before the old one is dropped: the build blocks writes to streams
-- (not reads) for its duration, the drop holds every access for an instant.
CREATE INDEX streams_target_user ON streams (target_type, target_id, user_id);
DROP INDEX streams_target;
ALTER INDEX streams_target_user RENAME TO streams_target;
