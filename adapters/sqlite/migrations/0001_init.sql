-- The log: one row per event. position is the rowid, so appends go to the
-- right edge of the table's B-tree and positions are gap-free in commit order.
CREATE TABLE streams (
    stream_key    INTEGER PRIMARY KEY,
    user_id       TEXT    NOT NULL,
    target_type   TEXT    NOT NULL,
    target_id     TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    last_position INTEGER NOT NULL,
    state         TEXT    NOT NULL,
    UNIQUE (user_id, target_type, target_id)
);

-- Reads by target go through streams; user reads use the unique index above.
CREATE INDEX streams_target ON streams (target_type, target_id);

CREATE TABLE events (
    position       INTEGER PRIMARY KEY,
    id             BLOB    NOT NULL,
    -- Not declared a foreign key: checking it costs a lookup per append,
    -- and the writer is the only code that inserts events.
    stream_key     INTEGER NOT NULL,
    stream_version INTEGER NOT NULL,
    type           TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    occurred_at    INTEGER NOT NULL, -- unix nanoseconds
    recorded_at    INTEGER NOT NULL, -- unix nanoseconds
    metadata       TEXT,             -- JSON object, NULL when empty
    UNIQUE (stream_key, stream_version)
);

CREATE UNIQUE INDEX events_id ON events (id);

CREATE TABLE idempotency (
    user_id        TEXT    NOT NULL,
    key            TEXT    NOT NULL,
    request_hash   TEXT    NOT NULL,
    changed        INTEGER NOT NULL,
    active         INTEGER NOT NULL,
    state          TEXT    NOT NULL,
    stream_version INTEGER NOT NULL,
    position       INTEGER NOT NULL,
    created_at     INTEGER NOT NULL, -- unix nanoseconds
    PRIMARY KEY (user_id, key)
) WITHOUT ROWID;

CREATE INDEX idempotency_created ON idempotency (created_at);
