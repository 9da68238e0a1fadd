package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

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

// popularStreams is the size of the popular target of
// TestStreamLookupByWholeIdentity and BenchmarkAppendPopularTarget.
const popularStreams = 40_000

// TestStreamLookupByWholeIdentity: the writer's lookup of a group
// commit's streams (sqlCheckStreams) and Snapshot's read find each stream
// through an index by all of user, target type and target id, whatever
// the statistics: on a table never analysed, with a target of 40,000
// streams, the planner took the target index and filtered the target's
// streams by user, 44 ms an append under the head lock (~450 appends/s,
// ~15,000/s once analysed). Checked with the plan PostgreSQL makes for the
// values and with the generic plan of the prepared statement, by the rows
// each reads, not by time.
func TestStreamLookupByWholeIdentity(t *testing.T) {
	conn := unanalysedLog(t)
	for _, c := range []struct{ name, prepare, execute string }{
		{"sqlCheckStreams", sqlCheckStreams, `EXECUTE lookup('{u39999,new}', '{article,article}', '{hot,hot}')`},
		{"sqlSnapshot", sqlSnapshot, `EXECUTE lookup('u39999', 'article', 'hot')`},
	} {
		if _, err := conn.Exec(t.Context(), "DEALLOCATE ALL; PREPARE lookup AS "+c.prepare); err != nil {
			t.Fatal(err)
		}
		for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
			if _, err := conn.Exec(t.Context(), "SET plan_cache_mode = "+mode); err != nil {
				t.Fatal(err)
			}
			var out string
			if err := conn.QueryRow(t.Context(), "EXPLAIN (ANALYZE, FORMAT JSON) "+c.execute).Scan(&out); err != nil {
				t.Fatal(err)
			}
			if bad := wholeIdentityScan(t, out); bad != "" {
				t.Errorf("%s (%s): %s", c.name, mode, bad)
			}
		}
	}
}

// unanalysedLog returns a connection to a schema of its own holding a
// popular target's log (prefillPopularTarget) whose streams and events
// were never analysed, closed when t ends.
func unanalysedLog(t *testing.T) *pgx.Conn {
	t.Helper()
	url, schema := pgtest.URL(t), pgtest.Schema(t)
	prefillPopularTarget(t, url, schema, false)
	conn, err := pgx.Connect(t.Context(), pgtest.WithSchema(url, schema))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.WithoutCancel(t.Context())) })
	for _, table := range []string{"streams", "events"} {
		var tuples float64
		if err := conn.QueryRow(t.Context(), `SELECT reltuples FROM pg_class WHERE oid = $1::regclass`, table).Scan(&tuples); err != nil || tuples >= 0 {
			t.Fatalf("%s has statistics (reltuples %v, %v): the test needs a table never analysed", table, tuples, err)
		}
	}
	return conn
}

// prefillPopularTarget migrates schema and writes popularStreams streams
// of article/hot, one event each, with autovacuum off on the tables,
// analysed or not (as a fresh import leaves them).
func prefillPopularTarget(tb testing.TB, url, schema string, analyse bool) {
	tb.Helper()
	s, err := Open(tb.Context(), Config{URL: url, Schema: schema}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	sql := fmt.Sprintf(`ALTER TABLE %[1]s.streams SET (autovacuum_enabled = false);
ALTER TABLE %[1]s.events SET (autovacuum_enabled = false);
INSERT INTO %[1]s.streams (stream_key, user_id, target_type, target_id, version, last_position, state)
SELECT g, 'u' || g, 'article', 'hot', 1, g, 'like' FROM generate_series(1, %[2]d) g;
INSERT INTO %[1]s.events (position, id, stream_key, stream_version, type, kind, occurred_at, recorded_at)
SELECT g, gen_random_uuid(), g, 1, 'interaction.added', 'like', g, g FROM generate_series(1, %[2]d) g;
UPDATE %[1]s.log_head SET position = %[2]d, stream_key = %[2]d`, pgx.Identifier{schema}.Sanitize(), popularStreams)
	if analyse {
		sql += fmt.Sprintf(`; ANALYZE %[1]s.streams; ANALYZE %[1]s.events`, pgx.Identifier{schema}.Sanitize())
	}
	pgtest.Exec(tb, sql)
}

// planNode is a node of EXPLAIN (ANALYZE, FORMAT JSON)'s plan.
type planNode struct {
	NodeType      string     `json:"Node Type"`
	Relation      string     `json:"Relation Name"`
	Index         string     `json:"Index Name"`
	IndexCond     string     `json:"Index Cond"`
	RemovedFilter int64      `json:"Rows Removed by Filter"`
	Plans         []planNode `json:"Plans"`
}

// wholeIdentityScan returns what is wrong with plan (EXPLAIN's JSON) as a
// lookup of streams by identity, "" when nothing is: it must scan an index
// of streams on user_id, target_type and target_id, never the whole table,
// and filter out no row.
func wholeIdentityScan(t *testing.T, plan string) string {
	t.Helper()
	var out []struct{ Plan planNode }
	if err := json.Unmarshal([]byte(plan), &out); err != nil || len(out) != 1 {
		t.Fatalf("EXPLAIN's JSON: %v", err)
	}
	var bad []string
	scans := 0
	var walk func(n planNode)
	walk = func(n planNode) {
		if n.RemovedFilter > 0 {
			bad = append(bad, fmt.Sprintf("%s of %s filtered out %d rows a loop", n.NodeType, n.Relation, n.RemovedFilter))
		}
		if n.NodeType == "Seq Scan" && n.Relation == "streams" {
			bad = append(bad, "it reads the whole streams table")
		}
		if strings.HasPrefix(n.Index, "streams") {
			scans++
			for _, col := range []string{"user_id", "target_type", "target_id"} {
				if !strings.Contains(n.IndexCond, col+" = ") {
					bad = append(bad, fmt.Sprintf("%s on %s does not seek %s", n.NodeType, n.Index, col))
				}
			}
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(out[0].Plan)
	if scans == 0 {
		bad = append(bad, "no index of streams scanned")
	}
	return strings.Join(bad, "; ")
}

// TestRecordedAtReadsOneEvent: the group commit's read of the last
// event's recorded_at seeks it by position, never reads the events table,
// on a table without statistics (a fresh import, autovacuum off). Written
// as a join of events and log_head, the planner, which estimates
// log_head's one row at ~1,800 without statistics, hashed every event of
// the log for every commit: a lone appender fell from ~870 to ~330
// appends/s on a 10,000-event log, and the cost grew with the log.
func TestRecordedAtReadsOneEvent(t *testing.T) {
	conn := unanalysedLog(t)
	if _, err := conn.Exec(t.Context(), "PREPARE recorded AS "+sqlRecordedAt); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		if _, err := conn.Exec(t.Context(), "SET plan_cache_mode = "+mode); err != nil {
			t.Fatal(err)
		}
		var out string
		if err := conn.QueryRow(t.Context(), "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE recorded").Scan(&out); err != nil {
			t.Fatal(err)
		}
		var plan []struct{ Plan planNode }
		if err := json.Unmarshal([]byte(out), &plan); err != nil || len(plan) != 1 {
			t.Fatalf("EXPLAIN's JSON: %v", err)
		}
		var seeks int
		var walk func(n planNode)
		walk = func(n planNode) {
			if n.Relation == "events" && n.Index != "events_pkey" {
				t.Errorf("%s: %s of events (index %q), want a seek of events_pkey", mode, n.NodeType, n.Index)
			}
			if n.Index == "events_pkey" {
				seeks++
			}
			for _, c := range n.Plans {
				walk(c)
			}
		}
		walk(plan[0].Plan)
		if seeks != 1 {
			t.Errorf("%s: %d seeks of events_pkey, want 1:\n%s", mode, seeks, out)
		}
	}
}
