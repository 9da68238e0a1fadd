-- The (user, target) identity of streams kept off the append path, as the
-- target index is (0002). streams' UNIQUE (user_id, target_type, target_id)
-- took a random page of a large index per new stream in every group
-- commit. stream_users holds the same pairs, added by the writer in bulk,
-- in key order, together with stream_targets and under the same watermark:
-- every stream whose key is at most stream_targets_through.through is in
-- both. The writer keeps the streams after the watermark in memory (and
-- reloads them when another connection has written); reads add them from a
-- range of the streams' rowids. Uniqueness is the single writer's: it
-- looks a stream up in stream_users and in that tail before it creates it,
-- and the primary key below rejects a duplicate when the tail is indexed.

-- Bring the target index up to the last stream, so that the one watermark
-- covers stream_users from the start.
INSERT INTO stream_targets (target_type, target_id, stream_key)
SELECT target_type, target_id, stream_key FROM streams
WHERE stream_key > (SELECT through FROM stream_targets_through)
ORDER BY target_type, target_id, stream_key;

UPDATE stream_targets_through SET through = (SELECT coalesce(max(stream_key), 0) FROM streams);

CREATE TABLE stream_users (
    user_id     TEXT    NOT NULL,
    target_type TEXT    NOT NULL,
    target_id   TEXT    NOT NULL,
    stream_key  INTEGER NOT NULL,
    PRIMARY KEY (user_id, target_type, target_id)
) WITHOUT ROWID;

INSERT INTO stream_users (user_id, target_type, target_id, stream_key)
SELECT user_id, target_type, target_id, stream_key FROM streams
ORDER BY user_id, target_type, target_id;

-- SQLite cannot drop a table constraint: copy streams into a table without it.
CREATE TABLE streams_next (
    stream_key    INTEGER PRIMARY KEY,
    user_id       TEXT    NOT NULL,
    target_type   TEXT    NOT NULL,
    target_id     TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    last_position INTEGER NOT NULL,
    state         TEXT    NOT NULL
);

INSERT INTO streams_next (stream_key, user_id, target_type, target_id, version, last_position, state)
SELECT stream_key, user_id, target_type, target_id, version, last_position, state FROM streams
ORDER BY stream_key;

DROP TABLE streams;

ALTER TABLE streams_next RENAME TO streams;
