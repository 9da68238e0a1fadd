// Package loggen writes synthetic histories into an event store, for the
// tests and benchmarks that need a realistic log of some size: random
// toggles of many (user, target) streams with a hot target, appended
// through the store's own Append, so the log is one the command service
// could have written. `ledger bench rebuild` and the projections' tests
// and benchmarks use it.
//
// What must not live here: anything a running ledger needs. It is test and
// bench tooling, kept out of the production packages.
package loggen
