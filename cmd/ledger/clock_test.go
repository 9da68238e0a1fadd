package main

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/interactionledger/ledger/domain"
)

// TestServeWarnsOfARecordedTimeAhead: a log whose last event was recorded
// by a clock years ahead pins every later event's recorded_at to that time
// (recorded_at never goes back). The server says so at its start and at
// the commit that meets it, naming both times, and the metric
// ledger_store_clock_behind_seconds shows by how much; before, nothing
// told the operator.
func TestServeWarnsOfARecordedTimeAhead(t *testing.T) {
	db := filepath.Join(t.TempDir(), "ledger.db")
	s := startServe(t, db, nil)
	s.want(t, 200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	s.stop(t)

	const years = 10 * 365 * 24 * time.Hour
	shiftRecordedAt(t, db, years)

	s = startServe(t, db, nil)
	const warning = "the log's last event was recorded ahead of this clock"
	if n := strings.Count(s.logs.String(), warning); n != 1 {
		t.Fatalf("%d warnings at the start, want 1:\n%s", n, s.logs)
	}
	s.want(t, 200, "PUT", "/v1/targets/article/a-1/like/u2", "")
	metrics := string(s.want(t, 200, "GET", "/metrics", ""))
	behind := metricValue(t, metrics, "ledger_store_clock_behind_seconds")
	if behind < (years - time.Hour).Seconds() {
		t.Fatalf("ledger_store_clock_behind_seconds %g, want about %g", behind, years.Seconds())
	}
	for _, line := range strings.Split(s.logs.String(), "\n") {
		if strings.Contains(line, warning) && !(strings.Contains(line, `"recorded_at":"203`) && strings.Contains(line, `"clock":"20`)) {
			t.Errorf("the warning does not name both times: %s", line)
		}
	}
	s.stop(t)
}

// shiftRecordedAt moves the recorded_at of every event of the SQLite log
// db by d.
func shiftRecordedAt(t *testing.T, db string, d time.Duration) {
	t.Helper()
	conn, err := sql.Open("sqlite3", db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(`UPDATE events SET recorded_at = recorded_at + ?`, int64(d)); err != nil {
		t.Fatal(err)
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
}

// metricValue is the value of the unlabelled metric name in a Prometheus
// text exposition.
func metricValue(t *testing.T, exposition, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// clockedStore is a store recording events by a clock of its own (as
// PostgreSQL records by the database server's), fixed at now.
type clockedStore struct {
	domain.EventStore
	now time.Time
}

func (c clockedStore) Now(context.Context) (time.Time, error) { return c.now, nil }

// TestClockAtOpenIsTheStores: the start's check compares the log's last
// recorded_at with the clock the store records by, which on PostgreSQL is
// the database server's, not the node's. A node whose own clock is minutes
// behind the database's warned at every start that the log was recorded
// ahead of it, though its appends are recorded at their own time, and the
// warning named the node's clock, not the one the log is recorded by.
func TestClockAtOpenIsTheStores(t *testing.T) {
	db := filepath.Join(t.TempDir(), "ledger.db")
	s := startServe(t, db, nil)
	s.want(t, 200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	s.stop(t)
	shiftRecordedAt(t, db, 365*24*time.Hour) // a year ahead of the node's clock
	ctx := t.Context()
	store, err := openStore(ctx, db, storeOptions{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	e, err := domain.EventAt(ctx, store, 1)
	if err != nil || e.RecordedAt.IsZero() {
		t.Fatalf("event 1: %+v, %v", e, err)
	}
	const warning = "the log's last event was recorded ahead of this clock"
	for _, c := range []struct {
		name  string
		clock time.Time // the store's
		warns bool
	}{
		{"the database's clock is past the log while the node's is a year behind it", e.RecordedAt.Add(time.Second), false},
		{"the database's clock is two minutes behind the log", e.RecordedAt.Add(-2 * time.Minute), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			clock := &clockWatch{log: slog.New(slog.NewJSONHandler(&logs, nil))}
			ahead := &logStore{EventStore: clockedStore{store.EventStore, c.clock}}
			clock.atOpen(ctx, ahead)
			if got := strings.Contains(logs.String(), warning); got != c.warns {
				t.Fatalf("warned %v, want %v:\n%s", got, c.warns, logs.String())
			}
			if c.warns && !strings.Contains(logs.String(), `"clock":"`+c.clock.UTC().Format(time.RFC3339Nano)) {
				t.Errorf("the warning does not name the store's clock %s:\n%s", c.clock.UTC().Format(time.RFC3339Nano), logs.String())
			}
		})
	}
}
