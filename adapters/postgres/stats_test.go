package postgres_test

import (
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/interactionledger/ledger/adapters/postgres"
	"github.com/interactionledger/ledger/adapters/postgres/pgtest"
	"github.com/interactionledger/ledger/adapters/storetest"
	"github.com/interactionledger/ledger/domain"
)

// TestStatsTotalsInByteOrder: Stats sorts its totals by kind in byte
// order, as the SQLite store does, whatever the database's collation.
// They were sorted in the database's collation: in an en-US one (ICU here,
// a database made under an en_US locale alike) "like_x" came before
// "like2", and `ledger stats` listed the kinds of one history in another
// order than on SQLite.
func TestStatsTotalsInByteOrder(t *testing.T) {
	schema := pgtest.Schema(t)
	s := openSchema(t, schema, postgres.Config{})
	pgtest.Exec(t, `ALTER TABLE `+pgx.Identifier{schema, "events"}.Sanitize()+` ALTER COLUMN kind TYPE text COLLATE "en-US-x-icu"`)
	st := storetest.MustStream(t, "alice", "article/a1")
	for _, kind := range []string{"likes", "like_x", "like2"} {
		storetest.MustDecide(t, s, domain.DecideRequest{Command: storetest.Command(t, st, kind, true)})
	}
	stats, err := s.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range stats.Totals {
		got = append(got, k.Kind)
	}
	if want := []string{"like2", "like_x", "likes"}; !slices.Equal(got, want) {
		t.Errorf("totals in the order %q, want byte order %q", got, want)
	}
}
