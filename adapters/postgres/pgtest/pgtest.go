package pgtest

import (
	"context"
	"fmt"
	"hash/fnv"
	neturl "net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultURL is the test server: PostgreSQL on 127.0.0.1:5432, database
// test, user postgres, trust authentication. LEDGER_TEST_POSTGRES_URL
// overrides it.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

var (
	reachOnce sync.Once
	reachErr  error
)

// URL returns the test server's URL once it answers. When it does not, tb
// fails when the environment has CI=true and is skipped otherwise, both
// with the address and the reason.
func URL(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv("LEDGER_TEST_POSTGRES_URL")
	if url == "" {
		url = DefaultURL
	}
	reachOnce.Do(func() { reachErr = ping(url) })
	if reachErr != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("PostgreSQL at %s is unreachable and CI=true: %v", redact(url), reachErr)
		}
		tb.Skipf("SKIPPED: PostgreSQL at %s is unreachable (%v); these tests need it (CI=true makes this a failure)",
			redact(url), reachErr)
	}
	return url
}

func ping(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.Ping(ctx)
}

// redact drops a password from url for messages.
func redact(url string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return "(unparsable URL)"
	}
	return fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
}

// SchemaFor maps a name (a test's path, say) to a schema name, the same
// name always to the same schema: "lt_" and 16 hex digits.
func SchemaFor(name string) string {
	h := fnv.New64a()
	h.Write([]byte(name))
	return fmt.Sprintf("lt_%016x", h.Sum64())
}

// Schema returns a schema name unique to tb (derived from its name and the
// time) and drops the schema, with everything in it, when tb ends.
func Schema(tb testing.TB) string {
	tb.Helper()
	s := SchemaFor(fmt.Sprintf("%s %d", tb.Name(), time.Now().UnixNano()))
	DropAtCleanup(tb, s)
	return s
}

// DropAtCleanup drops schema (if it exists) when tb ends.
func DropAtCleanup(tb testing.TB, schema string) {
	tb.Helper()
	url := URL(tb)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
}

// WithSchema returns url with search_path set to schema.
func WithSchema(url, schema string) string {
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return url + sep + "search_path=" + schema
}

// Exec runs sql on the test server as the URL's user (a superuser), for
// setting up and breaking things; it fails tb on error.
func Exec(tb testing.TB, sql string, args ...any) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, URL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

// Role creates a login role that owns schema (a fresh one) and returns a
// URL connecting as it, with search_path set to schema. A test can then
// lock that role out (ALTER ROLE ... CONNECTION LIMIT 0) and terminate its
// backends without touching anyone else's connections. Schema and role
// are dropped when tb ends.
func Role(tb testing.TB, schema string) (url, role string) {
	tb.Helper()
	base := URL(tb)
	role = "r" + schema
	Exec(tb, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" LOGIN")
	tb.Cleanup(func() { Exec(tb, "DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize()) })
	Exec(tb, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()+" AUTHORIZATION "+pgx.Identifier{role}.Sanitize())
	DropAtCleanup(tb, schema)
	u, err := neturl.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	u.User = neturl.User(role)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), role
}

// LockOut stops role from connecting and terminates its sessions: every
// use of the database by that role fails until LetIn.
func LockOut(tb testing.TB, role string) {
	tb.Helper()
	Exec(tb, "ALTER ROLE "+pgx.Identifier{role}.Sanitize()+" CONNECTION LIMIT 0")
	Terminate(tb, role)
}

// LetIn lets role connect again.
func LetIn(tb testing.TB, role string) {
	tb.Helper()
	Exec(tb, "ALTER ROLE "+pgx.Identifier{role}.Sanitize()+" CONNECTION LIMIT -1")
}

// Terminate ends every session of role with pg_terminate_backend.
func Terminate(tb testing.TB, role string) {
	tb.Helper()
	Exec(tb, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role)
}
