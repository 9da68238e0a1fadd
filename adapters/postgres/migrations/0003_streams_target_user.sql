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
-- The head row first, as every appending transaction locks it: a writer
-- of an older node holding it and reading streams would otherwise wait
-- for the build's lock on streams to write its streams while the drop
-- waits for its read: a deadlock, which failed that commit. Built
-- before the old one is dropped: appends wait for the build, reads do not;
-- the drop holds every access for an instant.
SELECT position FROM log_head FOR UPDATE;
CREATE INDEX streams_target_user ON streams (target_type, target_id, user_id);
DROP INDEX streams_target;
ALTER INDEX streams_target_user RENAME TO streams_target;
