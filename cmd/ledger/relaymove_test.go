package main

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/nats/natstest"
	"github.com/interactionledger/ledger/adapters/postgres/pgtest"
	"github.com/interactionledger/ledger/internal/dburl"
)

// relayArgs are the arguments of `ledger relay nats` relaying db into the
// test's stream n.
func relayArgs(db, url string, n natstest.Names) []string {
	return []string{"relay", "nats", "--db", db, "--nats", url, "--stream", n.Stream, "--subject-prefix", n.Prefix,
		"--lock-bucket", n.Bucket, "--lock-ttl", "1s", "--poll-interval", "20ms"}
}

// childExit is the exit status of a child that ended (-1 when it was
// killed by a signal or did not run).
func childExit(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err == nil {
		return 0
	}
	return -1
}

// stopRelay stops a relay child with SIGTERM and checks it exits 0.
func stopRelay(t *testing.T, c *child) {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGTERM)
	if err := c.wait(t, 30*time.Second); err != nil {
		t.Fatalf("relay after SIGTERM: %v\n%s", err, c.stderr)
	}
}

// TestRelayFollowsAMovedLog: a SQLite log relayed into a stream (the relay
// stopped mid-way, more events appended after it), moved to PostgreSQL by
// import log, then relayed from PostgreSQL into the same stream: the
// stream holds every event of the log once, in position order, with the
// same ids, the events appended to PostgreSQL after the move following
// with no gap.
func TestRelayFollowsAMovedLog(t *testing.T) {
	url := natstest.MustURL(t)
	n := natstest.UniqueNames(t, url)
	js := natstest.MustJetStream(t, url)
	src := filepath.Join(t.TempDir(), "ledger.db")
	burst(t, src, 200, 1)
	relay := startChild(t, relayArgs(src, url, n)...)
	natstest.WaitHolds(t, js, n.Stream, 200)
	burst(t, src, 300, 2)
	waitUntil(t, "the relay to publish the second burst", func() bool { return natstest.Count(t, js, n.Stream) > 200 })
	stopRelay(t, relay)
	burst(t, src, 100, 3) // the stream lacks these
	held := natstest.Count(t, js, n.Stream)
	if held >= uint64(len(logOf(t, src))) {
		t.Fatalf("the stream holds %d messages, the whole log: the relay was to stop mid-way", held)
	}

	pg := pgtest.WithSchema(pgtest.URL(t), h1Schema(t))
	mustImportLog(t, src, pg)
	burst(t, pg, 100, 4) // after the move, before the relay
	relay = startChild(t, relayArgs(pg, url, n)...)
	burst(t, pg, 100, 5) // while it relays
	events := logOf(t, pg)
	natstest.WaitHolds(t, js, n.Stream, len(events))
	stopRelay(t, relay)
	natstest.CheckIsLog(t, js, n, logIDAt(t, pg), events)
	if strings.Contains(relay.stderr.String(), "level=ERROR") {
		t.Errorf("the relay on the moved log logged errors:\n%s", relay.stderr)
	}
}

// TestRelayRunningWhenItsLogMoves: a relay still running on the SQLite
// log when import log seals it stops by itself, exit 2 naming where the
// log went, and releases its lock, so that a relay started on the
// PostgreSQL log (at once, as a standby) takes the stream over: every
// event once, in order, those appended after the move included.
func TestRelayRunningWhenItsLogMoves(t *testing.T) {
	url := natstest.MustURL(t)
	n := natstest.UniqueNames(t, url)
	js := natstest.MustJetStream(t, url)
	src := filepath.Join(t.TempDir(), "ledger.db")
	burst(t, src, 200, 1)
	old := startChild(t, relayArgs(src, url, n)...)
	natstest.WaitHolds(t, js, n.Stream, 1)
	burst(t, src, 200, 2)

	pg := pgtest.WithSchema(pgtest.URL(t), h1Schema(t))
	mustImportLog(t, src, pg)
	relay := startChild(t, relayArgs(pg, url, n)...)
	burst(t, pg, 100, 3)
	err := old.wait(t, 60*time.Second)
	if childExit(err) != 2 || !strings.Contains(old.stderr.String(), "moved to "+dburl.Redact(pg)) {
		t.Fatalf("the relay on the sealed log: %v; want exit 2 naming %s\n%s", err, dburl.Redact(pg), old.stderr)
	}
	events := logOf(t, pg)
	natstest.WaitHolds(t, js, n.Stream, len(events))
	stopRelay(t, relay)
	natstest.CheckIsLog(t, js, n, logIDAt(t, pg), events)
}

// TestRelayOnASealedLogRefused: a relay started on a sealed log does not
// start, exit 2 naming where the log went, and publishes nothing.
func TestRelayOnASealedLogRefused(t *testing.T) {
	url := natstest.MustURL(t)
	n := natstest.UniqueNames(t, url)
	js := natstest.MustJetStream(t, url)
	src := filepath.Join(t.TempDir(), "ledger.db")
	burst(t, src, 50, 1)
	dest := filepath.Join(t.TempDir(), "dest.db")
	mustImportLog(t, src, dest)
	c := startChild(t, relayArgs(src, url, n)...)
	err := c.wait(t, 60*time.Second)
	if childExit(err) != 2 || !strings.Contains(c.stderr.String(), "moved to "+dest) {
		t.Fatalf("relay on a sealed log: %v; want exit 2 naming %s\n%s", err, dest, c.stderr)
	}
	if got := natstest.Count(t, js, n.Stream); got != 0 {
		t.Fatalf("the relay on a sealed log published %d messages", got)
	}
}

// TestRelayRefusesAnotherLogsStream: a relay pointed at the stream of
// another log refuses it, exit 1 naming the stream, and publishes
// nothing; so when the two logs hold the same events at the same
// positions (each imported from one legacy file, whose event ids are
// derived from its rows) but are two logs (two LogIDs) that went on apart.
func TestRelayRefusesAnotherLogsStream(t *testing.T) {
	url := natstest.MustURL(t)
	js := natstest.MustJetStream(t, url)
	dir := t.TempDir()
	a, b, other := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db"), filepath.Join(dir, "other.db")
	for _, db := range []string{a, b} {
		if _, errOut, err := runCLI(t, "import", "legacy", "--on-error", "skip", legacySample, "--db", db); err != nil {
			t.Fatalf("import legacy: %v\n%s", err, errOut)
		}
	}
	if logIDAt(t, a) == logIDAt(t, b) {
		t.Fatal("two logs with one identity")
	}
	burst(t, other, 20, 1)
	for _, c := range []struct{ name, db string }{{"another log", other}, {"a log of the same events", b}} {
		t.Run(c.name, func(t *testing.T) {
			n := natstest.UniqueNames(t, url)
			relay := startChild(t, relayArgs(a, url, n)...)
			natstest.WaitHolds(t, js, n.Stream, len(logOf(t, a)))
			stopRelay(t, relay)
			held := natstest.Count(t, js, n.Stream)
			mustLiveLike(t, c.db, "later", "article/later")
			wrong := startChild(t, relayArgs(c.db, url, n)...)
			err := wrong.wait(t, 60*time.Second)
			if childExit(err) != 1 || !strings.Contains(wrong.stderr.String(), "does not match the log") {
				t.Fatalf("relay of %s into a's stream: %v; want exit 1, the stream refused\n%s", c.name, err, wrong.stderr)
			}
			if got := natstest.Count(t, js, n.Stream); got != held {
				t.Fatalf("relay of %s into a's stream published %d messages", c.name, got-held)
			}
		})
	}
}
