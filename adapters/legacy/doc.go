// Package legacy imports history from the soft-delete model that sites
// migrate from: one row per like or collect, is_deleted set on cancel,
// updated_at the cancel time (see testdata/README.md).
//
// Parse reads and checks the whole file before anything is written, and
// turns it into a Plan: every row becomes an interaction.added command at
// created_at, plus an interaction.cancelled command at updated_at when the
// row is deleted, in time order. Event ids are derived from the source name
// and the legacy row id, so re-running an import appends nothing new.
// Apply feeds the plan to domain.Ledger.Import. The package knows nothing of
// the event log's store or HTTP.
//
// A plan is not held in memory, whose use would grow with the file: Parse
// spills the rows into a scratch SQLite database (a file under
// os.TempDir(), no journal, no fsync) and works there with ordered scans
// and sorts that SQLite does in bounded memory: repeated row ids, each
// pair's history (ORDER BY pair, time), then the plan's order. Plan.Each
// streams the plan from an ORDER BY query; the rejected rows (Plan.Errors)
// and the conflicts Apply finds (Plan.Conflicts) are rows of it too.
// Plan.Close removes the file; Parse removes it itself when it fails,
// ctx's end included. A directory that an import killed outright left is
// removed by the next Parse once its pid runs no process (its name holds
// the boot, PID namespace and pid of its import; see removeAbandoned).
//
// Over a QueueImporter (domain.Ledger.QueueImport, on a store that queues
// decided commands), Apply keeps up to Window imports in flight, queued in
// the plan's order, which the store appends in that order and commits
// many to a transaction and an fsync; a step whose stream has one in
// flight is queued to follow it (domain.DecideRequest.Follows: the store's
// writer appends it only once that one's event is in the log), so a pair's
// add and cancel share a commit, and a conflict still stops the stream's
// later steps as when they are imported one at a time.
package legacy
