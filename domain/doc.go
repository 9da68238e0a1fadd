// Package domain holds the Interaction Ledger's model: value objects (Kind,
// Target, UserID), the events (interaction.added, interaction.cancelled),
// the pure decide/evolve pair, the command service Ledger, validated
// Metadata, and the ports to the log: CommandStore (what Ledger needs) and
// the optional DecidingStore (a store that decides a command inside the
// transaction that appends its event, so Ledger reads no snapshot first;
// DecideIn picks it or DecideThenAppend, the snapshot-then-append path)
// and QueueingStore (one that takes decided commands without waiting for
// their commits, in order, many to a commit, a command queued to follow
// another of its stream decided only once that one's event is in the log:
// Ledger.QueueImport),
// EventReader and Tailable (what projections, exports and tailers need),
// EventStore (all of them, what a store implements) and the optional
// LatestReader (a rebuild's read: each interaction's last Toggle, an event
// reduced to what the state depends on) and RecentReader (a tail's read of
// the store's own latest commits, from memory), and Identified (a log
// that names itself with a UUID, the Ledger-Log). Reads are
// iter.Seq2[Event, error] sequences.
//
// Nothing here knows about SQLite, watermill or HTTP: the package imports only
// the standard library and github.com/google/uuid, and `make lint` fails if
// that changes. Adapters translate their errors into the sentinels defined
// here (ErrVersionConflict, ErrInvalidInput, ...), so callers can map errors
// to behaviour with errors.Is without knowing which store they talk to.
package domain
