package main

import (
	"database/sql"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
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
	conn, err := sql.Open("sqlite3", db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(`UPDATE events SET recorded_at = recorded_at + ?`, int64(years)); err != nil {
		t.Fatal(err)
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}

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
