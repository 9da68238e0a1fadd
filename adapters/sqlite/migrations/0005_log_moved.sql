-- Where the log went when `ledger import log` moved it to another store:
-- no row before, one row once the copy is committed there. The seal that
-- writes the row also adds triggers that refuse every write of the log's
-- tables (naming the destination), so that processes already running,
-- and builds that know no seal, take no write either.
CREATE TABLE log_moved (
    one      INTEGER PRIMARY KEY CHECK (one = 1),
    dest     TEXT    NOT NULL, -- any password shown as xxxxx
    moved_at INTEGER NOT NULL  -- unix nanoseconds
);
