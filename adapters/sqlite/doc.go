// Package sqlite is the embedded event store: domain.EventStore on one
// SQLite file (mattn/go-sqlite3, WAL, synchronous=FULL by default), with
// group commit.
//
// One writer goroutine owns the only write connection. Appends are queued
// to it; it gathers what is queued (lingering up to Config.MaxDelay while
// appenders are concurrent) into one IMMEDIATE transaction, checks each
// append on its own (version, idempotency key) before it writes anything,
// so that a conflict or a duplicate id fails that append alone, commits
// once (one fsync per batch) and answers every caller. Reads go through a
// separate pool of read-only connections and never wait for the writer.
// ReadLatest (domain.LatestReader) lets SQLite pick each (stream, kind)'s
// last event for a projection rebuild, reading two partitions of the
// streams on two of those connections at once.
//
// Schema (migrations/): events is the log, its rowid the position; streams
// holds each stream's snapshot (version, last position, state), written in
// the same transaction as the append; idempotency holds request outcomes
// for 48 hours. The version check reads streams inside the write
// transaction; the writer's in-memory copy of versions is trusted only
// while the log still ends where this writer left it, so another process
// (an import) may append to the same file.
//
// Everything SQLite-specific stays here: schema and migrations, DSNs, driver
// error codes (translated to domain errors at this package's edge). Nothing
// here decides commands or knows about projections, the bus or HTTP.
// benchload.go holds the store's benchmark workloads, shared by the
// testing.B benchmarks and the `ledger bench store` command.
package sqlite
