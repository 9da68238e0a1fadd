package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/interactionledger/ledger/adapters/postgres/pgtest"
	"github.com/interactionledger/ledger/projections"
)

// TestSubcommandsOnPostgres runs every subcommand that takes --db with a
// PostgreSQL URL: import legacy, history, stats, rebuild, verify and asof,
// with --views where it applies.
func TestSubcommandsOnPostgres(t *testing.T) {
	db := pgtest.WithSchema(pgtest.URL(t), pgtest.Schema(t))
	dir := t.TempDir()
	views := filepath.Join(dir, "node.views")
	out, errOut, err := runCLI(t, "import", "legacy", "--on-error", "skip", legacySample, "--db", db)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, errOut)
	}
	mustContain(t, out, "2206 events appended")
	want := legacyActiveCounts(t)
	got := logActiveCounts(t, db)
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %d active in the log, %d in the CSV", k, got[k], n)
		}
	}

	out, _, err = runCLI(t, "history", "--db", db, "--format", "csv", "--limit", "3")
	if err != nil || strings.Count(out, "\n") != 4 {
		t.Fatalf("history: %v\n%s", err, out)
	}
	if out, _, err = runCLI(t, "rebuild", "--db", db, "--views", views); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, out)
	}
	mustContain(t, out, "up to position 2206")
	if _, err := os.Stat(views); err != nil {
		t.Fatalf("rebuild did not write --views: %v", err)
	}
	out, _, err = runCLI(t, "stats", "--db", db, "--views", views, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep StatsReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Events != 2206 || rep.LastPosition != 2206 || rep.Streams == 0 || rep.FileBytes <= 0 || len(rep.Totals) == 0 {
		t.Fatalf("stats %+v", rep)
	}
	for _, p := range rep.Projections {
		if p.Lag != 0 {
			t.Errorf("%s lags %d behind a rebuilt views file", p.Name, p.Lag)
		}
	}
	if out, _, err = runCLI(t, "verify", "--db", db, "--views", views); err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	mustContain(t, out, "OK: the read model equals the log")
	asof := filepath.Join(dir, "asof.db")
	if out, _, err = runCLI(t, "asof", "--db", db, "--position", "100", "--out", asof); err != nil {
		t.Fatalf("asof: %v\n%s", err, out)
	}
	mustContain(t, out, "as of position 100")
}

// TestBadPostgresURLExit2 checks that a malformed URL or schema is a usage
// error naming the problem, found before connecting.
func TestBadPostgresURLExit2(t *testing.T) {
	for _, db := range []string{
		"postgres://postgres@127.0.0.1:5432/test?search_path=Bad-Name",
		"postgres://postgres@127.0.0.1:5432/test?search_path=a,b",
		"postgres://%zz",
	} {
		_, _, err := runCLI(t, "history", "--db", db)
		if exitCode(err) != 2 {
			t.Errorf("history --db %q: %v (exit %d), want exit 2", db, err, exitCode(err))
		}
	}
}

// TestBenchStorePostgres runs a tiny bench store with --db: the PostgreSQL
// rows sit beside the SQLite ones, and the schemas it made are gone after.
func TestBenchStorePostgres(t *testing.T) {
	url := pgtest.URL(t)
	out, errOut, err := runCLI(t, "bench", "store", "--db", url, "--appenders", "1,8", "--events", "40",
		"--pairs", "1", "--prefill", "10", "--one-per-tx-events", "5", "--pg-events", "40", "--dir", t.TempDir(), "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	var rows []StoreResult
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	names := map[string]StoreResult{}
	for _, r := range rows {
		names[r.Name] = r
	}
	for _, want := range []string{"ledger append, 8 appenders", "postgres ledger append, 8 appenders",
		"postgres bigserial+xid8, 1 per tx, 8 appenders"} {
		if r, ok := names[want]; !ok || r.PerSecond <= 0 || r.Appends != 40 {
			t.Errorf("row %q: %+v (present %t)", want, r, ok)
		}
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var left int
	pattern := fmt.Sprintf("ledger_bench_%d_%%", os.Getpid())
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_namespace WHERE nspname LIKE $1`, pattern).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("bench store left %d schemas behind", left)
	}
}

// TestServeOtherSchemasViewsNamesViews: one views file for two schemas
// (the default ./data/ledger.views is one for every URL) is refused as
// another log's; the refusal said to rebuild it, which takes it from the
// first schema's node, or, over an empty schema, to copy a SQLite -wal.
func TestServeOtherSchemasViewsNamesViews(t *testing.T) {
	url := pgtest.URL(t)
	one, two := pgtest.WithSchema(url, pgtest.Schema(t)), pgtest.WithSchema(url, pgtest.Schema(t))
	views := filepath.Join(t.TempDir(), "node.views")
	if _, errOut, err := runCLI(t, "bench", "generate", "--db", one, "--events", "10"); err != nil {
		t.Fatalf("generate: %v\n%s", err, errOut)
	}
	if _, errOut, err := runCLI(t, "rebuild", "--db", one, "--views", views); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, errOut)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	err := run(ctx, []string{"serve", "--db", two, "--views", views, "--listen", "127.0.0.1:0"},
		func(string) string { return "" }, &out, &errOut)
	if !errors.Is(err, projections.ErrOtherLog) || !strings.Contains(err.Error(), "give --views") {
		t.Fatalf("serve of another schema on its views file: %v, want ErrOtherLog saying to give --views", err)
	}
}

// TestBenchGenerateOnPostgres: bench generate writes into the PostgreSQL
// log a URL names (it used to open a SQLite file named like the URL).
func TestBenchGenerateOnPostgres(t *testing.T) {
	db := pgtest.WithSchema(pgtest.URL(t), pgtest.Schema(t))
	if out, errOut, err := runCLI(t, "bench", "generate", "--db", db, "--events", "500"); err != nil {
		t.Fatalf("generate: %v\n%s%s", err, out, errOut)
	}
	out, _, err := runCLI(t, "stats", "--db", db, "--views", filepath.Join(t.TempDir(), "node.views"), "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep StatsReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Events != 500 || rep.LastPosition != 500 || !rep.ViewsMissing {
		t.Fatalf("stats after generating 500 events into PostgreSQL: %+v", rep)
	}
	if _, err := os.Stat("postgres:"); err == nil {
		t.Fatal("bench generate created a file named after the URL")
	}
	// Refused for its events, it named the URL, password included.
	withPW := strings.Replace(db, "postgres://postgres@", "postgres://postgres:SECRETPW@", 1)
	_, _, err = runCLI(t, "bench", "generate", "--db", withPW, "--events", "10")
	if exitCode(err) != 2 || strings.Contains(err.Error(), "SECRETPW") {
		t.Errorf("generate into a schema with events: %v (exit %d), want exit 2 with the password masked", err, exitCode(err))
	}
}

// TestServeAnswersWhileOpeningTheLog: a node whose log is still opening
// (here its migrations wait for a lock another session holds, as they
// wait for another node's migration 0003 for as long as its index build)
// already answers: /healthz 200 for a liveness probe, /readyz 503 saying
// it opens the log, other routes 503 "starting" without Ledger-Log; once
// the log opens it serves. It used to accept connections and answer
// nothing until its log was open.
func TestServeAnswersWhileOpeningTheLog(t *testing.T) {
	url := pgtest.URL(t)
	schema := pgtest.Schema(t)
	db := pgtest.WithSchema(url, schema)
	if _, errOut, err := runCLI(t, "bench", "generate", "--db", db, "--events", "10"); err != nil {
		t.Fatalf("generate: %v\n%s", err, errOut)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), "LOCK TABLE "+pgx.Identifier{schema, "schema_migrations"}.Sanitize()+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	s := startServeUntil(t, "starting", db, nil, "--views", filepath.Join(t.TempDir(), "node.views"))
	if res, b := s.call(t, "GET", "/healthz", ""); res.StatusCode != 200 {
		t.Errorf("/healthz while the log opens: %d %s", res.StatusCode, b)
	}
	if res, b := s.call(t, "GET", "/readyz", ""); res.StatusCode != 503 || !strings.Contains(string(b), "starting: opening the log") {
		t.Errorf("/readyz while the log opens: %d %s", res.StatusCode, b)
	}
	res, b := s.call(t, "GET", "/v1/targets/article/a-1", "")
	if res.StatusCode != 503 || !strings.Contains(string(b), "urn:ledger:problem:starting") || res.Header.Get("Ledger-Log") != "" {
		t.Errorf("a read while the log opens: %d %v %s", res.StatusCode, res.Header, b)
	}
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := waitReady(t.Context(), s.base+"/readyz", time.Minute); err != nil {
		t.Fatalf("%v\n%s", err, s.logs)
	}
	if res, _ := s.call(t, "GET", "/v1/targets/article/a-1", ""); res.StatusCode != 200 || res.Header.Get("Ledger-Log") == "" {
		t.Errorf("a read once open: %d %v", res.StatusCode, res.Header)
	}
	s.stop(t)
}
