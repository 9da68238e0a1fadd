package postgres_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/interactionledger/ledger/adapters/postgres"
	"github.com/interactionledger/ledger/adapters/postgres/pgtest"
	"github.com/interactionledger/ledger/adapters/storetest"
	"github.com/interactionledger/ledger/domain"
)

// sqlNowNanos is the database's clock in Unix nanoseconds.
const sqlNowNanos = `(extract(epoch FROM clock_timestamp()) * 1000000)::bigint * 1000`

// TestRecordedAtFollowsPositions: an event's recorded_at is never before
// the one of the event at the position before it, on a cluster whose
// nodes wait for each other's commits. Another node's commit (written
// here by hand, recorded by the database's clock) takes the head while an
// append waits for it; the append, which took its time before it waited,
// recorded a time before the event ahead of it, and asof --time, which
// cuts the log at the last event recorded at or before a time, then cut
// it at a moment that never was.
func TestRecordedAtFollowsPositions(t *testing.T) {
	url, schema := pgtest.URL(t), pgtest.Schema(t)
	s := openSchema(t, schema, postgres.Config{})
	storetest.MustAppend(t, s, like(t, "u0", "article/a1"))

	conn, err := pgx.Connect(t.Context(), pgtest.WithSchema(url, schema))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var pos, key int64
	if _, err := conn.Exec(t.Context(), `BEGIN`); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(t.Context(), `SELECT position + 1, stream_key + 1 FROM log_head FOR UPDATE`).Scan(&pos, &key); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	req := like(t, "u1", "article/a1")
	wg.Go(func() { appendOrError(t, s, req) })
	waitFor(t, "the append to wait for the head lock", func() bool { return waitersBehind(t, url, conn) > 0 })
	for _, st := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO streams VALUES ($2, 'other', 'article', 'a1', 1, $1, 'like')`, []any{pos, key}},
		{`INSERT INTO events VALUES ($1, gen_random_uuid(), $2, 1, 'interaction.added', 'like', ` + sqlNowNanos + `, ` + sqlNowNanos + `, NULL)`, []any{pos, key}},
		{`UPDATE log_head SET position = $1, stream_key = $2`, []any{pos, key}},
		{`COMMIT`, nil},
	} {
		if _, err := conn.Exec(t.Context(), st.sql, st.args...); err != nil {
			t.Fatalf("%s: %v", st.sql, err)
		}
	}
	wg.Wait()

	events := storetest.MustReadAll(t, s, domain.EventFilter{})
	if len(events) != 3 {
		t.Fatalf("%d events, want 3", len(events))
	}
	for i := 1; i < len(events); i++ {
		if prev, e := events[i-1], events[i]; e.RecordedAt.Before(prev.RecordedAt) {
			t.Errorf("position %d recorded at %s, before position %d's %s",
				e.Position, e.RecordedAt.Format(time.RFC3339Nano), prev.Position, prev.RecordedAt.Format(time.RFC3339Nano))
		}
	}
}

// TestCommitStatsSayWhenTheClockIsBehind: after an event recorded by a
// clock years ahead, a commit is recorded at that event's time and says
// how far behind it the database's clock was, so that the server can tell
// its operator.
func TestCommitStatsSayWhenTheClockIsBehind(t *testing.T) {
	url, schema := pgtest.URL(t), pgtest.Schema(t)
	var mu sync.Mutex
	var last postgres.CommitStats
	s := openSchema(t, schema, postgres.Config{OnCommit: func(st postgres.CommitStats) {
		mu.Lock()
		defer mu.Unlock()
		last = st
	}})
	stats := func() postgres.CommitStats {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
	storetest.MustAppend(t, s, like(t, "u0", "article/a1"))
	if st := stats(); st.ClockBehind != 0 || st.RecordedAt.IsZero() {
		t.Fatalf("a commit on time: behind %s, recorded at %s; want 0 and a time", st.ClockBehind, st.RecordedAt)
	}
	conn, err := pgx.Connect(t.Context(), pgtest.WithSchema(url, schema))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	const years = 10 * 365 * 24 * time.Hour
	var ahead int64
	if err := conn.QueryRow(t.Context(), `UPDATE events SET recorded_at = recorded_at + $1 RETURNING recorded_at`, int64(years)).Scan(&ahead); err != nil {
		t.Fatal(err)
	}
	storetest.MustAppend(t, s, like(t, "u1", "article/a1"))
	if st := stats(); st.ClockBehind < years-time.Hour || st.ClockBehind > years || st.RecordedAt.UnixNano() != ahead {
		t.Fatalf("after an event 10 years ahead: behind %s, recorded at %s; want about %s, at %s", st.ClockBehind, st.RecordedAt, years, time.Unix(0, ahead).UTC())
	}
}

// TestNowIsTheDatabasesClock: the store's Now (domain.Clocked) reads the
// clock its events are recorded by, the database server's, which a node
// compares the log's last recorded_at with at its start; after Close it
// reads nothing.
func TestNowIsTheDatabasesClock(t *testing.T) {
	url, schema := pgtest.URL(t), pgtest.Schema(t)
	s := openSchema(t, schema, postgres.Config{})
	conn, err := pgx.Connect(t.Context(), pgtest.WithSchema(url, schema))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	dbNow := func() time.Time {
		var ns int64
		if err := conn.QueryRow(t.Context(), `SELECT `+sqlNowNanos).Scan(&ns); err != nil {
			t.Fatal(err)
		}
		return time.Unix(0, ns)
	}
	before := dbNow()
	now, err := domain.NowOf(t.Context(), s)
	after := dbNow()
	if err != nil || now.Before(before) || now.After(after) {
		t.Fatalf("Now = %v, %v: want the database's clock, between %v and %v", now, err, before, after)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Now(t.Context()); !errors.Is(err, domain.ErrClosed) {
		t.Fatalf("Now after Close: %v, want domain.ErrClosed", err)
	}
}
