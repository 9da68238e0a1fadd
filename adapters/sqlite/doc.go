// Package sqlite is the embedded event store: domain.EventStore on one
// SQLite file (mattn/go-sqlite3, WAL), with group commit.
//
// One writer goroutine owns the only write connection. Appends are queued to
// it; it gathers what is queued into one IMMEDIATE transaction, runs each
// append inside its own SAVEPOINT (so a conflict fails that append alone),
// commits once and answers every caller. Reads go through a separate pool
// of read-only connections. The per-stream snapshot (version, last
// position, state) lives in the streams table and is updated in the same
// transaction as the append, and the version check reads it inside that
// transaction, so other processes may append to the same file.
//
// Everything SQLite-specific stays here: schema and migrations, DSNs, driver
// error codes (translated to domain errors at this package's edge). Nothing
// here decides commands or knows about projections, the bus or HTTP.
// benchload.go holds the store's benchmark workload, shared by the testing.B
// benchmarks and the `ledger bench store` command.
package sqlite
