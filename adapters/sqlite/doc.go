// Package sqlite is the embedded event store: domain.EventStore on one
// SQLite file (mattn/go-sqlite3, WAL, synchronous=FULL by default), with
// group commit. Every connection to a log file, the benchmarks' raw
// baselines included, opens through this package's driver (driverName),
// which checkpoints the WAL every 10,000 pages instead of SQLite's 1,000;
// the writer's connection (and a raw baseline's) checkpoints nothing
// itself: a walcheckpoint.Checkpointer copies the WAL on a connection of
// its own at that threshold and finishes each checkpoint on the writer's
// connection between two commits, so no commit waits for a checkpoint.
//
// There is one write connection, used under a mutex. Concurrent appends
// are queued (adapters/groupcommit, shared with the PostgreSQL store) to
// one writer goroutine; it gathers what is queued (lingering up to Config.MaxDelay while
// appenders are concurrent) into one IMMEDIATE transaction, checks each
// append on its own (version, idempotency key) before it writes anything,
// so that a conflict or a duplicate id fails that append alone, commits
// once (one fsync per batch) and answers every caller. A decided command
// (Decide, domain.DecidingStore: every write of the Ledger) is decided
// there, against the stream as the transaction finds it (the writer's
// cache of each stream's version, last position and state, or a lookup on
// its connection), and appends its event, or nothing when it changes
// nothing. QueueDecide (domain.QueueingStore) queues a decided command
// without waiting for it: the commands one goroutine queues are written in
// that order, those in flight in one transaction (an import's pipeline);
// one that follows another (DecideRequest.Follows) is decided only once
// that one's event is in the transaction or the log.
// A lone appender (the last commit held one append, nothing is
// queued, the connection is free) runs the same transaction on its own
// goroutine, sparing two goroutine hand-offs per append. A transaction's statements are
// prepared on the driver connection and run through it, inside one
// sql.Conn.Raw per transaction, without database/sql's per-call wrappers
// (hot.go, writer.go). Reads go through a
// separate pool of read-only connections and never wait for the writer.
// ReadLatest (domain.LatestReader, latest.go) hands a projection rebuild
// each (stream, kind)'s last toggle: it reads the streams' identities into
// arrays by key, then the log backwards, unindexed, on two of those
// connections (one per parity of stream keys), yielding the first toggle
// met of each (stream, kind) as it goes. The events of the store's
// latest commits (up to 4,096, at consecutive positions) stay in memory,
// once a follower has asked for them, for AppendRecent (domain.RecentReader, recent.go), so that a tail
// following this process's own commits reads no row back; a commit of
// another connection in between starts that memory afresh.
//
// Schema (migrations/, loaded by internal/migrations, which also words the
// refusal of a log at another schema version; each migration runs with
// foreign keys off and checked before its commit): events is the log, its
// rowid the position; log_identity (migration 0004) the log's UUID,
// LogID, which copies of the file keep; streams
// holds each stream's snapshot (version, last position, state), written in
// the same transaction as the append; idempotency holds request outcomes
// for 48 hours. Two stream indexes are kept off the append path:
// stream_targets (by target, for reads by target) and stream_users (the
// (user, target) identity, for the writer's lookups, snapshots and reads
// by user). A new stream waits outside both until Config.TargetIndexEvery
// streams wait, and the commit that reaches that many adds them in bulk,
// sorted, and moves their one watermark stream_targets_through in that
// transaction (no fsync of its own), where each new stream would otherwise
// dirty a random page of an index in every group commit. A read by target
// or by user takes the indexed streams and, by a range of keys, those
// after the watermark, in one statement. The writer keeps the waiting
// streams' identities in memory (tail.go): it looks a stream up there and
// in stream_users before it creates it, and Snapshot finds a waiting
// stream by its key. The version check reads streams inside the write
// transaction; the writer's in-memory copy of versions, of the log's end,
// of the watermark and of the waiting streams is trusted only while
// PRAGMA data_version says no other connection has written (else it is
// read again), so another process (an import) may append to the same file.
//
// A read-only store (Config.ReadOnly: the relay, history, rebuild) watches
// its path as the writer does (internal/pathwatch): its connections go on
// reading a file deleted, moved or replaced at the path (a restore, a log
// made anew), which no writer appends to any more, so once the path names
// another file, or none, LastPosition and ReadEvents fail with
// domain.ErrLogReplaced (and domain.ErrUnavailable) until a restart opens
// what the path names. A path that cannot be checked (a stat failing with
// EACCES or EIO) fails them with domain.ErrUnavailable only, since it may
// pass.
//
// Everything SQLite-specific stays here: schema and migrations, DSNs, driver
// error codes (translated to domain errors at this package's edge). Nothing
// here knows about projections, the bus or HTTP; the writer decides a
// command only through domain.Decided.
// backup.go copies a log, while other processes write it, into a new file
// (Backup, `ledger backup`): SQLite's online backup API under one read
// transaction, so the copy is one snapshot, checked and read back.
// benchload.go runs the shared append workload (adapters/storebench) on
// this store and the raw-insert baselines that need its schema, for the
// testing.B benchmarks and the `ledger bench store` command.
package sqlite
