// Package projections holds the read models of the ledger: the current
// state computed from the event log, kept in a SQLite file of its own (the
// "views" file, by convention "<log>.views") so that projection writes never
// take the log's write lock.
//
// Four projections live here, each with its own tables, schema version and
// checkpoint row:
//
//   - counts: per (target, kind) the number of streams with the kind on, and
//     the position of the last event that touched the target;
//   - viewer: per (user, target, kind) whether the kind is on, since when;
//   - actors: who turned kind k on for target t, newest first;
//   - collection: what user u turned kind k on for, newest first.
//
// A projection applies a batch of events in one transaction that also moves
// its checkpoint, and skips every event at or below the checkpoint it reads
// inside that transaction. Applying is therefore idempotent: duplicates from
// a bus, a restart, or a rebuild running in another process are harmless.
//
// Set is the entry point: Open it (it creates, rebuilds or catches up the
// projections from the store as needed; with Config.RebuildBehind it also
// rebuilds a projection whose backlog is large enough that a rebuild
// reaches the head sooner), feed it batches with ApplyAll
// (all projections in one transaction; the bus adapter does that) or
// Apply (one projection), read it with Target, Targets, Actors and
// Collection, wait for freshness with WaitFor, watch it with Applied, Err,
// Status, Config.OnStatus and OnApplied. Rebuild, CatchUp, BuildAsOf and
// Verify read a domain.EventReader directly in large batches, never through
// the bus; building into empty tables from a store that is also a
// domain.LatestReader reads only each interaction's last toggle, writes
// the first interaction table of the build from the folds and copies the
// others from it in SQL (they hold the same rows in other key orders).
//
// Files: one per projection, with its DDL, apply and queries (counts.go,
// viewer.go, actors.go, collection.go; the three one-table projections
// share table.go); fold.go reduces a run of events to its net effect;
// projection.go names them; view.go holds the answers of the reads
// (TargetView and the list items); set.go, apply.go, build.go, rebuild.go,
// asof.go and verify.go run them;
// db.go is the views file and its checkpoints (and the checkpointer of a
// live file's WAL, internal/walcheckpoint, so that the applier's commits
// never wait for a WAL checkpoint); cursor.go the paging;
// memory.go (with memactors.go, its lists) the in-memory copy of counts,
// viewer and actors that answers Target, Targets and Actors while it is
// loaded and the three projections are at its position (Config.MemoryRows
// bounds it; it is reloaded from one snapshot of the file when a rebuild
// or another process moved the tables under it).
//
// Failure: a projection that cannot apply an event (ErrInconsistent, a
// SQLite error) keeps its checkpoint before the batch, logs an error, is
// reported by Err and Status (ErrFailed), and is never advanced past the
// event; the bus applies the same batch again after a growing wait (0.1 s
// doubling to 5 s), so once the cause is gone it goes on without a
// restart, and a restart resumes from the checkpoint. A cancelled context
// is a shutdown, not a failure. A views file that cannot be read answers
// ErrUnreadable. One SQLite finds malformed or not a database fails Open
// with ErrDamaged (checked on the file itself with Damaged, SQLite's integrity check: a corrupt log
// answers with the same codes); ledger rebuild sets it aside. A views file
// deleted, moved or replaced under an open Set makes its reads answer
// domain.ErrUnavailable and Err report it (internal/pathwatch): the read
// pool would otherwise open the new file beside the old one applied to.
// With Config.RebuildBehind (a server), Open refuses a file it cannot
// write rather than come up ready and fail at its first batch.
//
// Locks (locks_unix.go): two rebuilds of one views file share its "__new"
// tables, so each takes the file's rebuild lock (LockRebuild: a flock on
// "<views>.rebuild-lock", released when its holder exits or dies) and the
// second waits for the first; a server holds LockServe's
// ("<views>.serve-lock") for its life, so that a second server given the
// same views file is refused (ErrServed).
//
// Logs: each projection records in the meta table the log (its Ledger-Log
// id) it was built from. Open with Config.RebuildBehind (a server's
// setting) refuses a views file built from another log (ErrOtherLog),
// ahead of its log (ErrAhead) or whose last applied event the log does not
// hold (ErrDiverged: an older copy restored and grown past it) rather than
// rebuild over it. The last applied event is named by its position and id
// in each checkpoint row (event_position, event_id), written in the same
// transaction as the position; a running set also compares it with the
// event at that position in each batch the bus hands over (checkEvent),
// and stops for good, as WatchHead does, when the log holds another event
// there; WatchHead compares it too at each look, for a log that grew back
// to the set's position and brings no batch past it. Without RebuildBehind
// (the tools' setting) Open takes the file as it is. Rebuild makes it
// this log's, and Verify reports such a checkpoint instead of comparing
// tables.
//
// What must not live here: transport (watermill, HTTP) and the event store
// itself. The package imports only the standard library, domain, the
// SQLite driver, google/uuid (event ids), internal/sqlitedsn (the file's name for the driver),
// internal/walcheckpoint and internal/pathwatch; `make lint` fails if it imports adapters or
// net/http.
package projections
