// Package postgres is the event store of a cluster: domain.EventStore (and
// domain.LatestReader) on PostgreSQL through pgx/v5's pgxpool, so that
// several ledger processes, each with its own local read models, share one
// log.
//
// Positions are one gap-free integer in commit order for every process.
// Each appending transaction locks the single row of log_head first, takes
// the next positions from it and writes the new head before it commits:
// appending transactions therefore commit one after the other in position
// order, a rolled-back one leaves no gap, and a reader that sees position p
// sees every position below it. A tailer can never skip an event that
// commits late, the trap of a bigserial position. Group commit pays for the
// serialisation: one writer goroutine per process gathers concurrent
// appends (queued through adapters/groupcommit, shared with the SQLite
// store) into one transaction, checks each on its own (stream version,
// idempotency key, event ids) against what it read after taking the lock
// (and decides a decided write, Decide, against the stream as read there
// or as an earlier append of the batch left it: no Snapshot round trip
// before a write, no conflict between nodes writing one stream),
// so that a conflict fails that append alone, writes the rest with a few
// array statements and answers every caller only after COMMIT
// (synchronous_commit = on). Two round trips per transaction: one for
// BEGIN, the lock and the checks, one for the writes and COMMIT. A decided
// command (Decide, domain.DecidingStore: every write of the Ledger) is
// decided against the stream as read there, before its checks, so a writer
// on another node that moved the stream is no conflict. QueueDecide
// (domain.QueueingStore) queues one without waiting: the commands one
// goroutine queues are written in that order, many to a transaction; one
// that follows another (DecideRequest.Follows) is decided only once that
// one's event is planned or stored.
//
// Committed fires for commits of every process: the appending transaction
// runs pg_notify with the new head, which PostgreSQL delivers on commit to
// one dedicated LISTEN connection per store; that connection reconnects
// when lost and polls the head as a slow safety net.
//
// The schema is created by versioned migrations (migrations/*.sql, loaded
// by internal/migrations, recorded in schema_migrations) under a session
// advisory lock, so several processes may start at once; a schema at
// another version is refused with internal/migrations' wording.
// Config.Schema (or search_path in the URL) places the tables in a schema
// of their own. Migration 0002 gives the log its identity (log_identity,
// LogID, the server's Ledger-Log), read once by Open: a schema dropped and
// made anew under a running store holds another log, and its head reads
// and appends then fail with ErrLogReplaced (unavailable, naming both
// logs) and its reads yield none of the new log's events. A failed group
// commit, and a run of failed reconnections of the commit listener, are
// logged through internal/failurelog.
//
// Everything PostgreSQL-specific stays here: SQL, pgx, SQLSTATE codes
// (translated to domain errors at this package's edge, never by message).
// Nothing here knows about projections, the bus or HTTP; the writer
// decides a command only through domain.Decided.
package postgres
