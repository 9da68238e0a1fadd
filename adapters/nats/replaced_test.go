package nats_test

import (
	"errors"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/nats/natstest"
	"github.com/interactionledger/ledger/adapters/postgres"
	"github.com/interactionledger/ledger/adapters/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

// openPostgres opens schema's log, writable or read-only as the relay does.
func openPostgres(t *testing.T, schema string, readOnly bool) *postgres.EventStore {
	t.Helper()
	s, err := postgres.Open(t.Context(), postgres.Config{URL: pgtest.URL(t), Schema: schema, ReadOnly: readOnly}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestRelayStopsWhenThePostgresLogIsReplaced: a schema dropped and made
// anew under a running relay holds another log. The relay must stop with
// ErrLogReplaced (retrying cannot fix it) rather than wait for ever, and
// must publish none of the new log's events after the old log's.
func TestRelayStopsWhenThePostgresLogIsReplaced(t *testing.T) {
	url := natstest.MustURL(t)
	schema := pgtest.Schema(t)
	n := natstest.UniqueNames(t, url)
	js := natstest.MustJetStream(t, url)
	writer := openPostgres(t, schema, false)
	write(t, writer, 30, "old")
	old := logEvents(t, writer)
	run := startRelay(t, openPostgres(t, schema, true), testConfig(url, n), nil)
	natstest.WaitHolds(t, js, n.Stream, len(old))
	writer.Close()
	pgtest.Exec(t, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	write(t, openPostgres(t, schema, false), 60, "new")
	select {
	case err := <-run.done:
		run.done <- err // for the cleanup's stop
		if !errors.Is(err, postgres.ErrLogReplaced) {
			t.Fatalf("Run: %v, want ErrLogReplaced", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the relay still runs 20s after its log was replaced")
	}
	natstest.CheckIsLog(t, js, n, old)
}
