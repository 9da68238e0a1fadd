package httpapi

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/postgres"
	"github.com/interactionledger/ledger/adapters/postgres/pgtest"
)

// TestStreamFilteredOnPostgres: a stream filtered to targets over a
// PostgreSQL log replays their events (the log's read by target, in many
// batches) in order, each once, with their counts, resumes at the log's
// head, then sends their live events only, and a client resuming from
// its last id gets what it missed and nothing twice. Without PostgreSQL
// it fails under CI=true and is skipped otherwise (pgtest.URL).
func TestStreamFilteredOnPostgres(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	store, err := postgres.Open(ctx, postgres.Config{URL: pgtest.URL(t), Schema: pgtest.Schema(t)}, nil)
	if err != nil {
		cancel()
		t.Fatalf("open the PostgreSQL log: %v", err)
	}
	e := envOver(t, ctx, cancel, store, filepath.Join(t.TempDir(), "ledger.views"),
		func(c *Config) { c.Heartbeat = 10 * time.Millisecond }, nil)
	e.fillFiltered()
	head := mustHead(t, store)
	rd := e.openStream(t, "?after=0&t=article/a-1&t=comment/c-3")
	checkFilteredReplay(t, rd, head)

	e.expect(200, "PUT", "/v1/targets/article/a-2/like/live", "")
	e.expect(200, "PUT", "/v1/targets/comment/c-3/collect/live", "")
	live := mustHead(t, store)
	if ev := readSSE(t, rd); mustAtoi(t, ev.id) != live || ev.data.Target.ID != "c-3" || ev.data.Kind != "collect" || ev.data.Counts["like"] != 5 {
		t.Fatalf("live event %s %+v, want c-3's collect at %d", ev.id, ev.data, live)
	}

	e.expect(200, "PUT", "/v1/targets/article/a-1/collect/away", "") // while the client is away
	e.putMany(5, "away")
	again := e.openStream(t, "?t=article/a-1&t=comment/c-3", "Last-Event-ID", strconv.FormatInt(live, 10))
	readFrame(t, again)
	if ev := readSSE(t, again); mustAtoi(t, ev.id) != live+1 || ev.data.Target.ID != "a-1" || ev.data.Kind != "collect" {
		t.Fatalf("after the resume: event %s %+v, want a-1's collect at %d", ev.id, ev.data, live+1)
	}
	if id := nextResume(t, again); mustAtoi(t, id) != mustHead(t, store) {
		t.Fatalf("resume point after the resumed replay %s, want the log's head %d", id, mustHead(t, store))
	}
}

// mustHead is the position of the log's newest event.
func mustHead(t *testing.T, store Log) int64 {
	t.Helper()
	head, err := store.LastPosition(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return head
}
