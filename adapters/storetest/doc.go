// Package storetest is the contract suite of domain.EventStore: Run checks
// an implementation against everything the port promises (atomic appends,
// version conflicts, duplicate ids, idempotency records, gap-free positions
// in commit order, filters, restarts, cancellation, concurrency).
//
// Every store runs the same suite from its own tests. Nothing here knows a
// particular store; the suite only uses the port, plus io.Closer to close a
// store before reopening it.
package storetest
