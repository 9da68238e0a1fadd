-- The head of the log: the last position and stream key handed out. Every
-- appending transaction locks this one row first, so appends commit in
-- position order and positions have no gaps.
CREATE TABLE log_head (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    position   bigint  NOT NULL,
    stream_key bigint  NOT NULL
);
INSERT INTO log_head (id, position, stream_key) VALUES (true, 0, 0);

-- One row per (user, target) stream: its snapshot, written with each append.
CREATE TABLE streams (
    stream_key    bigint PRIMARY KEY,
    user_id       text   NOT NULL,
    target_type   text   NOT NULL,
    target_id     text   NOT NULL,
    version       bigint NOT NULL,
    last_position bigint NOT NULL,
    state         text   NOT NULL,
    UNIQUE (user_id, target_type, target_id)
);
CREATE INDEX streams_target ON streams (target_type, target_id);

CREATE TABLE events (
    position       bigint PRIMARY KEY,
    id             uuid   NOT NULL,
    stream_key     bigint NOT NULL,
    stream_version bigint NOT NULL,
    type           text   NOT NULL,
    kind           text   NOT NULL,
    occurred_at    bigint NOT NULL, -- unix nanoseconds (timestamptz keeps microseconds only)
    recorded_at    bigint NOT NULL, -- unix nanoseconds
    metadata       text,            -- JSON object, NULL when empty
    CONSTRAINT events_stream_version UNIQUE (stream_key, stream_version)
);
CREATE UNIQUE INDEX events_id ON events (id);

CREATE TABLE idempotency (
    user_id        text    NOT NULL,
    key            text    NOT NULL,
    request_hash   text    NOT NULL,
    changed        boolean NOT NULL,
    active         boolean NOT NULL,
    state          text    NOT NULL,
    stream_version bigint  NOT NULL,
    position       bigint  NOT NULL,
    created_at     bigint  NOT NULL, -- unix nanoseconds
    CONSTRAINT idempotency_pkey PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_created ON idempotency (created_at);
