package postgres_test

import (
	"testing"

	"github.com/interactionledger/ledger/adapters/postgres"
	"github.com/interactionledger/ledger/adapters/postgres/pgtest"
	"github.com/interactionledger/ledger/adapters/storetest"
	"github.com/interactionledger/ledger/domain"
)

// openSchema opens a store on schema, closed when t ends.
func openSchema(t *testing.T, schema string, cfg postgres.Config) *postgres.EventStore {
	t.Helper()
	cfg.URL, cfg.Schema = pgtest.URL(t), schema
	s, err := postgres.Open(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestContract runs the store contract suite, each store in a schema of
// its own: the suite's path maps to the schema, so reopening a path sees
// its data.
func TestContract(t *testing.T) {
	pgtest.URL(t)
	storetest.Run(t, func(t *testing.T, path string) domain.EventStore {
		schema := pgtest.SchemaFor(path)
		pgtest.DropAtCleanup(t, schema)
		return openSchema(t, schema, postgres.Config{})
	})
}
