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
// SQLite or HTTP.
package legacy
