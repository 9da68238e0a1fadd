-- Where the log went when `ledger import log` moved it to another store:
-- no row before, one row once the copy is committed there. The seal that
-- writes the row also puts log_moved_refuse on the log's tables as a
-- trigger, with the message to refuse every write with: nodes already
-- running, and builds that know no seal, take no write either. A new
-- table and a function: nothing an older node's writer uses is locked.
CREATE TABLE log_moved (
    one      boolean     PRIMARY KEY DEFAULT true CHECK (one),
    dest     text        NOT NULL, -- any password shown as xxxxx
    moved_at timestamptz NOT NULL
);
CREATE FUNCTION log_moved_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'LGMVD', MESSAGE = TG_ARGV[0];
END
$$;
