package postgres

import (
	"fmt"
	"testing"

	"github.com/interactionledger/ledger/adapters/postgres/pgtest"
	"github.com/interactionledger/ledger/domain"
)

// TestFilteredReadsPlannedForTheirValues: reads by target are planned for
// the target they name, never by a generic plan of the statement. A
// prepared statement switched to one after five reads of ordinary
// targets, and a page of a popular target then read and sorted every
// event of its streams (2 s a page at 300,000 streams).
func TestFilteredReadsPlannedForTheirValues(t *testing.T) {
	schema := pgtest.Schema(t)
	s, err := Open(t.Context(), Config{URL: pgtest.URL(t), Schema: schema}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	// A popular target of 3,000 streams and 20,000 targets of one stream,
	// one event each, written as the log would hold them.
	pgtest.Exec(t, fmt.Sprintf(`INSERT INTO %[1]s.streams (stream_key, user_id, target_type, target_id, version, last_position, state)
SELECT g, 'u' || g, 'article', CASE WHEN g <= 3000 THEN 'hot' ELSE 'a' || g END, 1, g, 'like' FROM generate_series(1, 23000) g;
INSERT INTO %[1]s.events (position, id, stream_key, stream_version, type, kind, occurred_at, recorded_at)
SELECT g, gen_random_uuid(), g, 1, 'interaction.added', 'like', g, g FROM generate_series(1, 23000) g;
UPDATE %[1]s.log_head SET position = 23000, stream_key = 23000;
ANALYZE %[1]s.streams; ANALYZE %[1]s.events`, schema))
	read := func(id string) []domain.Event {
		t.Helper()
		var out []domain.Event
		for e, err := range s.ReadEvents(t.Context(), domain.EventFilter{TargetType: "article", TargetID: id, Limit: 100}) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, e)
		}
		return out
	}
	for i := range 200 {
		pos := 3001 + i%100
		if got := read(fmt.Sprintf("a%d", pos)); len(got) != 1 || got[0].Position != int64(pos) {
			t.Fatalf("article/a%d: %d events, want the one at %d", pos, len(got), pos)
		}
	}
	if got := read("hot"); len(got) != 100 || got[0].Position != 1 || got[99].Position != 100 {
		t.Fatalf("article/hot: %d events, want 1..100", len(got))
	}
	conns := s.pool.AcquireAllIdle(t.Context())
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	for _, c := range conns {
		var stmt string
		err := c.QueryRow(t.Context(), `SELECT statement FROM pg_prepared_statements
WHERE statement LIKE $1 AND generic_plans > 0 LIMIT 1`, "%FROM events e%target_id%").Scan(&stmt)
		if err == nil {
			t.Fatalf("a read by target ran a generic plan:\n%s", stmt)
		}
		if !isNoRows(err) {
			t.Fatal(err)
		}
	}
}
