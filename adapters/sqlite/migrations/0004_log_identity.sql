-- The log's identity (domain.Identified): a random UUID (version 4) made
-- once, when the log is created or first opened by a build that knows
-- this migration, and never changed. Positions mean something only within
-- one log; readers keep this id beside the positions they keep.
CREATE TABLE log_identity (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    id  TEXT    NOT NULL
);

INSERT INTO log_identity (one, id)
SELECT 1, lower(substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) || '-' ||
              substr('89ab', 1 + (random() & 3), 1) || substr(h, 18, 3) || '-' || substr(h, 21, 12))
FROM (SELECT hex(randomblob(16)) AS h);
