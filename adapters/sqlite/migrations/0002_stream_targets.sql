-- The target index kept off the append path. streams_target took a random
-- page per new stream in every group commit; stream_targets holds the same
-- (target, stream) pairs, but the writer adds them in bulk, in key order,
-- once enough streams wait (Config.TargetIndexEvery), in the transaction of
-- the commit that reaches that many. Every stream whose key is at most
-- stream_targets_through.through is in stream_targets; reads by target add
-- the streams after it (a range of the streams' rowids) in the same
-- statement. Stream keys only grow, and a stream row is never deleted once
-- committed, so the tail is exactly the streams with a larger key.
CREATE TABLE stream_targets (
    target_type TEXT    NOT NULL,
    target_id   TEXT    NOT NULL,
    stream_key  INTEGER NOT NULL,
    PRIMARY KEY (target_type, target_id, stream_key)
) WITHOUT ROWID;

CREATE TABLE stream_targets_through (
    one     INTEGER PRIMARY KEY CHECK (one = 1),
    through INTEGER NOT NULL
);

INSERT INTO stream_targets (target_type, target_id, stream_key)
SELECT target_type, target_id, stream_key FROM streams
ORDER BY target_type, target_id, stream_key;

INSERT INTO stream_targets_through (one, through)
SELECT 1, coalesce(max(stream_key), 0) FROM streams;

DROP INDEX streams_target;
