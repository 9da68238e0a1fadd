// Package pgtest gives tests a PostgreSQL database to run against: the
// server's URL after a reachability check (fail with CI=true, skip loudly
// otherwise) and fresh schemas dropped when the test ends.
//
// It is imported by tests only; nothing here runs in the ledger.
package pgtest
