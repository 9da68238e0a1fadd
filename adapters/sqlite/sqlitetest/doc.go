// Package sqlitetest gives tests what they do to a SQLite log from
// outside the store: a copy of it, or a copy put back under running
// stores, through SQLite's backup API (as the sqlite3 shell's .backup and
// .restore).
//
// It is imported by tests only; nothing here runs in the ledger.
package sqlitetest
