// Package storebench is the append workload of the store benchmarks, for
// any domain.EventStore: one-event appends to distinct random streams,
// built before the clock starts, run by concurrent appenders that retry
// version conflicts as the Ledger does.
//
// It is used by the PostgreSQL store's benchmarks and `ledger bench
// store`; it holds no store of its own and imports no driver.
package storebench
