// Package domain holds the Interaction Ledger's model: value objects (Kind,
// Target, UserID), the events (interaction.added, interaction.cancelled),
// the pure decide/evolve pair, the command service Ledger, and the ports it
// needs (EventStore).
//
// Nothing here knows about SQLite, watermill or HTTP: the package imports only
// the standard library and github.com/google/uuid, and `make lint` fails if
// that changes. Adapters translate their errors into the sentinels defined
// here (ErrVersionConflict, ErrInvalidInput, ...), so callers can map errors
// to behaviour with errors.Is without knowing which store they talk to.
package domain
