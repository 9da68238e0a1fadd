package postgres

import (
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/interactionledger/ledger/adapters/postgres/pgtest"
	"github.com/interactionledger/ledger/domain"
)

// TestMigrateTargetIndex: a schema an older build left at version 2, with
// streams_target on (target_type, target_id), is migrated by Open to
// streams_target on (target_type, target_id, user_id), its streams as
// they were, found by identity and by target.
func TestMigrateTargetIndex(t *testing.T) {
	url := pgtest.URL(t)
	schema := pgtest.Schema(t)
	conn, err := pgx.Connect(t.Context(), pgtest.WithSchema(url, schema))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	all, err := embedded()
	if err != nil {
		t.Fatal(err)
	}
	if err := applyMigrations(t.Context(), conn, schema, all[:2], slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	target := func() string {
		t.Helper()
		var def string
		if err := conn.QueryRow(t.Context(), `SELECT pg_get_indexdef('streams_target'::regclass)`).Scan(&def); err != nil {
			t.Fatal(err)
		}
		return def
	}
	if def := target(); def != "CREATE INDEX streams_target ON "+schema+".streams USING btree (target_type, target_id)" {
		t.Fatalf("version 2's streams_target: %s", def)
	}
	pgtest.Exec(t, `INSERT INTO `+pgx.Identifier{schema, "streams"}.Sanitize()+` (stream_key, user_id, target_type, target_id, version, last_position, state)
SELECT g, 'u' || g, 'article', 'hot', 1, g, 'like' FROM generate_series(1, 50) g;
INSERT INTO `+pgx.Identifier{schema, "events"}.Sanitize()+` (position, id, stream_key, stream_version, type, kind, occurred_at, recorded_at)
SELECT g, gen_random_uuid(), g, 1, 'interaction.added', 'like', g, g FROM generate_series(1, 50) g;
UPDATE `+pgx.Identifier{schema, "log_head"}.Sanitize()+` SET position = 50, stream_key = 50`)
	s, err := Open(t.Context(), Config{URL: url, Schema: schema}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if def := target(); def != "CREATE INDEX streams_target ON "+schema+".streams USING btree (target_type, target_id, user_id)" {
		t.Fatalf("migrated streams_target: %s", def)
	}
	user, _ := domain.NewUserID("u7")
	hot, _ := domain.NewTarget("article", "hot")
	snap, err := s.Snapshot(t.Context(), domain.StreamID{User: user, Target: hot})
	if err != nil || snap.Version != 1 || snap.LastPosition != 7 {
		t.Fatalf("u7's snapshot %+v, %v; want version 1 at 7", snap, err)
	}
	n := 0
	for e, err := range s.ReadEvents(t.Context(), domain.EventFilter{TargetType: "article", TargetID: "hot"}) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; e.Position != int64(n) {
			t.Fatalf("event %d at position %d", n, e.Position)
		}
	}
	if n != 50 {
		t.Fatalf("%d events of article/hot, want 50", n)
	}
}
