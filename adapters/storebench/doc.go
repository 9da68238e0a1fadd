// Package storebench is the append workload of the store benchmarks, for
// any domain.EventStore: one-event appends to distinct random streams,
// built before the clock starts, run by concurrent appenders that retry
// version conflicts as the Ledger does; and the paired runs that compare
// a store with a baseline on logs of the same size (Pair, Summarize).
//
// It is used by the SQLite and PostgreSQL stores' benchmarks and `ledger
// bench store`; it holds no store of its own and imports no driver.
package storebench
