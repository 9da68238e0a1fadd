package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/nats/natstest"
	"github.com/interactionledger/ledger/adapters/postgres/pgtest"
	"github.com/interactionledger/ledger/domain"
	"github.com/nats-io/nats.go/jetstream"
)

// TestRelayNATSSurvivesKill9 kills `ledger relay nats` with SIGKILL during
// bursts of writes by another process, restarts it each time, and checks
// that the stream holds exactly the log, in order; then stops it with
// SIGTERM (exit 0, lock released) and reads its metrics.
func TestRelayNATSSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("crash cycles run in the full suite (make test), not with -short")
	}
	url := natstest.MustURL(t)
	n := natstest.UniqueNames(t, url)
	js := natstest.MustJetStream(t, url)
	db := filepath.Join(t.TempDir(), "relay.db")
	burst(t, db, 300, 99)
	args := []string{"relay", "nats", "--db", db, "--nats", url, "--stream", n.Stream, "--subject-prefix", n.Prefix,
		"--lock-bucket", n.Bucket, "--lock-ttl", "1s", "--poll-interval", "20ms"}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	for cycle := range 4 {
		before := natstest.Count(t, js, n.Stream)
		relay := startChild(t, args...)
		var wg sync.WaitGroup
		wg.Go(func() { burst(t, db, 3000, cycle) })
		waitUntil(t, "the relay to publish", func() bool { return natstest.Count(t, js, n.Stream) > before })
		time.Sleep(time.Duration(20+rng.IntN(200)) * time.Millisecond)
		relay.kill()
		t.Logf("cycle %d: killed with %d messages in the stream", cycle, natstest.Count(t, js, n.Stream))
		wg.Wait()
	}
	metrics := mustFreeAddr(t)
	relay := startChild(t, append(args, "--metrics-listen", metrics)...)
	events := logOf(t, db)
	natstest.WaitHolds(t, js, n.Stream, len(events))
	waitUntil(t, "the relay's metrics", func() bool {
		_, body := httpDo(t, "GET", "http://"+metrics+"/metrics")
		return strings.Contains(string(body), "ledger_relay_position "+strconv.Itoa(len(events))+"\n")
	})
	relay.cmd.Process.Signal(syscall.SIGTERM)
	if err := relay.wait(t, 30*time.Second); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, relay.stderr)
	}
	mustContain(t, relay.stderr.String(), "relay lock released", "relay stopped")
	natstest.CheckIsLog(t, js, n, logIDAt(t, db), events)
	kv, err := js.KeyValue(context.Background(), n.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(context.Background(), n.Stream); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("lock after SIGTERM: %v, want it released (ErrKeyNotFound)", err)
	}
}

// burst appends about n events from this process (another writer than
// the relay), 32 at a time; seed varies the users.
func burst(t *testing.T, db string, n, seed int) {
	t.Helper()
	l, done := mustLedgerAt(t, db)
	defer done()
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			for i := w; i < n; i += 32 {
				u, _ := domain.NewUserID(fmt.Sprintf("s%d-u%d", seed, i))
				tg, _ := domain.NewTarget([]string{"article", "video"}[i%2], "a"+strconv.Itoa(i%50))
				k, _ := domain.ParseKind([]string{"like", "collect"}[(i/2)%2])
				if _, err := l.Set(context.Background(), domain.SetRequest{User: u, Target: tg, Kind: k, On: true}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// logOf returns the whole log at db.
func logOf(t *testing.T, db string) []domain.Event {
	t.Helper()
	var events []domain.Event
	if err := readLog(context.Background(), db, func(e domain.Event) error {
		events = append(events, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return events
}

// waitUntil polls cond; the limit only guards against a hang.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting (60s) for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRelayNATSBadFlags(t *testing.T) {
	db := filepath.Join(t.TempDir(), "bad.db")
	cases := map[string]struct {
		args []string
		want string
	}{
		"Replicas":      {[]string{"--stream-replicas", "0"}, `--stream-replicas "0"`},
		"URL":           {[]string{"--nats", "http://x:1"}, `--nats "http://x:1"`},
		"Wildcard":      {[]string{"--subject-prefix", "ledger.>"}, `--subject-prefix "ledger.>"`},
		"StreamDot":     {[]string{"--stream", "a.b"}, `--stream "a.b"`},
		"ShortTTL":      {[]string{"--lock-ttl", "10ms"}, `--lock-ttl "10ms"`},
		"BadDuration":   {[]string{"--lock-ttl", "soon"}, `"soon"`},
		"MetricsListen": {[]string{"--metrics-listen", "nope"}, `--metrics-listen "nope"`},
		"Poll":          {[]string{"--poll-interval", "0s"}, "--poll-interval 0s"},
		"PollSpins":     {[]string{"--poll-interval", "1ns"}, "--poll-interval 1ns"},
		"MetricsPort":   {[]string{"--metrics-listen", "127.0.0.1:99999"}, `--metrics-listen "127.0.0.1:99999"`},
		"URLPort":       {[]string{"--nats", "nats://127.0.0.1:99999"}, `--nats "nats://127.0.0.1:99999"`},
		"URLPassword":   {[]string{"--nats", "http://u:S3cret@x:1"}, `--nats "http://u:xxxxx@x:1"`},
		"Bucket":        {[]string{"--lock-bucket", "a b"}, `--lock-bucket "a b"`},
		"ZeroTTL":       {[]string{"--lock-ttl", "0s"}, `--lock-ttl "0s"`},
		"EmptyStream":   {[]string{"--stream", ""}, "--stream is empty"},
		"URLMixesWS":    {[]string{"--nats", "nats://127.0.0.1:4222,ws://127.0.0.1:8080"}, "websocket"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := runCLI(t, append([]string{"relay", "nats", "--db", db}, c.args...)...)
			if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), c.want) {
				t.Fatalf("err = %v (exit %d), want a usage error naming %s", err, exitCode(err), c.want)
			}
		})
	}
	t.Run("Env", func(t *testing.T) {
		getenv := func(k string) string { return map[string]string{"LEDGER_STREAM_REPLICAS": "9"}[k] }
		err := run(context.Background(), []string{"relay", "nats", "--db", db}, getenv, &strings.Builder{}, &strings.Builder{})
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), `--stream-replicas "9"`) {
			t.Fatalf("err = %v, want a usage error naming --stream-replicas 9", err)
		}
	})
	t.Run("BenchUnreachable", func(t *testing.T) {
		_, _, err := runCLI(t, "bench", "relay", "--events", "10", "--runs", "1", "--nats", "nats://127.0.0.1:1")
		if exitCode(err) != 1 || !strings.Contains(fmt.Sprint(err), "127.0.0.1:1") {
			t.Fatalf("err = %v (exit %d), want a failure naming the NATS address, before any run", err, exitCode(err))
		}
		_, _, err = runCLI(t, "bench", "relay", "--nats", "http://x:1")
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "--nats") {
			t.Fatalf("err = %v (exit %d), want a usage error naming --nats", err, exitCode(err))
		}
	})
	t.Run("UnknownBroker", func(t *testing.T) {
		_, _, err := runCLI(t, "relay", "kafka")
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), `"kafka"`) {
			t.Fatalf("err = %v, want a usage error naming kafka", err)
		}
	})
	t.Run("MissingLog", func(t *testing.T) {
		_, _, err := runCLI(t, "relay", "nats", "--db", db, "--nats", "nats://127.0.0.1:1")
		if exitCode(err) != 1 || !strings.Contains(fmt.Sprint(err), db) {
			t.Fatalf("err = %v (exit %d), want a failure naming %s", err, exitCode(err), db)
		}
	})
}

// TestBenchRelay runs a small bench relay: both rates are measured, the
// medians printed, and the bench's stream is gone afterwards.
func TestBenchRelay(t *testing.T) {
	url := natstest.MustURL(t)
	js := natstest.MustJetStream(t, url)
	streamsBefore := streamNames(t, js)
	out, errOut, err := runCLI(t, "bench", "relay", "--events", "300", "--runs", "1", "--nats", url, "--json")
	if err != nil {
		t.Fatalf("bench relay: %v\n%s", err, errOut)
	}
	var res RelayResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	m := res.Median
	if len(res.Runs) != 1 || m.Events != 300 || m.AppendPerSec <= 0 || m.RelayPerSec <= 0 || m.Ratio != m.RelayPerSec/m.AppendPerSec {
		t.Fatalf("result %+v", res)
	}
	for name := range streamNames(t, js) {
		if !streamsBefore[name] && (strings.HasPrefix(name, "BENCH_") || strings.HasPrefix(name, "KV_BENCH_")) {
			t.Errorf("bench relay left stream %s behind", name)
		}
	}
}

func streamNames(t *testing.T, js jetstream.JetStream) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	l := js.StreamNames(context.Background())
	for n := range l.Name() {
		names[n] = true
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// TestRelayNATSOnPostgres relays a PostgreSQL log: what was appended before
// the relay started and what another process appends while it runs, each
// event once and in order.
func TestRelayNATSOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("runs in the full suite (make test), not with -short")
	}
	url := natstest.MustURL(t)
	db := pgtest.WithSchema(pgtest.URL(t), pgtest.Schema(t))
	n := natstest.UniqueNames(t, url)
	js := natstest.MustJetStream(t, url)
	burst(t, db, 200, 1)
	relay := startChild(t, "relay", "nats", "--db", db, "--nats", url, "--stream", n.Stream,
		"--subject-prefix", n.Prefix, "--lock-bucket", n.Bucket)
	natstest.WaitHolds(t, js, n.Stream, 200)
	burst(t, db, 300, 2)
	events := logOf(t, db)
	natstest.WaitHolds(t, js, n.Stream, len(events))
	relay.cmd.Process.Signal(syscall.SIGTERM)
	if err := relay.wait(t, 30*time.Second); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, relay.stderr)
	}
	mustContain(t, relay.stderr.String(), "relay stopped")
	natstest.CheckIsLog(t, js, n, logIDAt(t, db), events)
}
