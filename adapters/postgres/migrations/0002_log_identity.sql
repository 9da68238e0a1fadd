-- The log's identity (domain.Identified): a random UUID made once, when
-- the log is created or first opened by a build that knows this
-- migration, and never changed. Positions mean something only within one
-- log; readers keep this id beside the positions they keep.
CREATE TABLE log_identity (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    id  uuid    NOT NULL DEFAULT gen_random_uuid()
);
INSERT INTO log_identity DEFAULT VALUES;
