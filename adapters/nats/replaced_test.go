package nats_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	relaynats "github.com/interactionledger/ledger/adapters/nats"
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
	old, oldLog := logEvents(t, writer), writer.LogID()
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
	natstest.CheckIsLog(t, js, n, oldLog, old)
}

// TestRelayStopsWhenTheLogMovesBack: an older copy of the same log
// restored under a running relay (same identity, a shorter log) will
// issue again positions the stream already holds, with other events. The
// relay reads on after its last position, so it would skip them and
// publish later events after the old ones: it must stop instead, naming
// the head that moved back.
func TestRelayStopsWhenTheLogMovesBack(t *testing.T) {
	url := natstest.MustURL(t)
	schema := pgtest.Schema(t)
	n := natstest.UniqueNames(t, url)
	js := natstest.MustJetStream(t, url)
	writer := openPostgres(t, schema, false)
	write(t, writer, 30, "old")
	old, oldLog := logEvents(t, writer), writer.LogID()
	run := startRelay(t, openPostgres(t, schema, true), testConfig(url, n), nil)
	natstest.WaitHolds(t, js, n.Stream, len(old))
	moveBack(t, schema, 10)
	waitStopped(t, run, "behind")
	natstest.CheckIsLog(t, js, n, oldLog, old)
}

// TestRelayStopsWhenTheLogMovesBackAndGrowsAgain: an older copy restored
// under a running relay that grows past the relayed position before the
// relay looks at the head again. The head is then not behind, but the
// log no longer holds the last relayed event at its position: the relay
// must stop, naming that position, and publish none of the new events.
func TestRelayStopsWhenTheLogMovesBackAndGrowsAgain(t *testing.T) {
	url := natstest.MustURL(t)
	schema := pgtest.Schema(t)
	n := natstest.UniqueNames(t, url)
	js := natstest.MustJetStream(t, url)
	writer := openPostgres(t, schema, false)
	write(t, writer, 30, "old")
	old, oldLog := logEvents(t, writer), writer.LogID()
	run := startRelay(t, openPostgres(t, schema, true), testConfig(url, n), nil)
	natstest.WaitHolds(t, js, n.Stream, len(old))
	writer.Close()
	moveBack(t, schema, 10)
	write(t, openPostgres(t, schema, false), 40, "new")
	waitStopped(t, run, "position "+strconv.FormatInt(old[len(old)-1].Position, 10))
	natstest.CheckIsLog(t, js, n, oldLog, old)
}

// moveBack makes schema's log what an older copy of it holds: its first
// head events.
func moveBack(t *testing.T, schema string, head int64) {
	t.Helper()
	q := pgx.Identifier{schema}.Sanitize()
	pos := strconv.FormatInt(head, 10)
	pgtest.Exec(t, "DELETE FROM "+q+".events WHERE position > "+pos)
	pgtest.Exec(t, "UPDATE "+q+".log_head SET position = "+pos)
}

// waitStopped waits for the relay to stop with ErrStreamMismatch, its
// message containing want.
func waitStopped(t *testing.T, run *running, want string) {
	t.Helper()
	select {
	case err := <-run.done:
		run.done <- err // for the cleanup's stop
		if !errors.Is(err, relaynats.ErrStreamMismatch) || !strings.Contains(err.Error(), want) {
			t.Fatalf("Run: %v, want ErrStreamMismatch containing %q", err, want)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the relay still runs 20s after its log moved back")
	}
}
