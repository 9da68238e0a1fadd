// Package migrations loads a store's versioned schema migrations (SQL files
// named NNNN_what.sql, embedded by each store) in version order, and words
// the refusal of a schema at another version: Remedy for a read-only open
// (what to run, or that a newer build migrated it), Newer for an open for
// writing of a schema a newer build migrated. One loader and one wording
// for the SQLite and the PostgreSQL store; running the migrations (their
// transactions, SQLite's foreign-key check, PostgreSQL's advisory lock)
// stays with each store.
package migrations
