package pgtest

import (
	"context"
	"fmt"
	"hash/fnv"
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
