package nats_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	relaynats "github.com/interactionledger/ledger/adapters/nats"
	"github.com/interactionledger/ledger/adapters/nats/natstest"
	"github.com/interactionledger/ledger/adapters/sqlite"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/testlog"
	"github.com/nats-io/nats.go/jetstream"
)

// testConfig is a relay config on the test's names with short delays.
func testConfig(url string, n natstest.Names) relaynats.Config {
	return relaynats.Config{
		URL: url, Stream: n.Stream, SubjectPrefix: n.Prefix, LockBucket: n.Bucket,
		LockTTL: 2 * time.Second, BackoffMin: 50 * time.Millisecond, BackoffMax: 400 * time.Millisecond,
		PollInterval: 20 * time.Millisecond, ProgressInterval: 200 * time.Millisecond,
	}
}

// mustStore opens a fresh SQLite log in the test's temp dir.
func mustStore(t *testing.T) *sqlite.EventStore {
	t.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "log.db")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// write appends about n events (toggles that change state) over a few
// users, two target types and both kinds; seed varies the users.
func write(t *testing.T, s domain.EventStore, n int, seed string) {
	t.Helper()
	l := domain.NewLedger(s, domain.MustKindSet("like", "collect"), domain.LedgerConfig{}, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	const workers = 8
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				u, _ := domain.NewUserID(fmt.Sprintf("%s-u%d", seed, i%37))
				tg, _ := domain.NewTarget([]string{"article", "video-clip"}[i%2], "a"+strconv.Itoa(i%11))
				k, _ := domain.ParseKind([]string{"like", "collect"}[(i/2)%2])
				on := (i/74)%2 == 0
				if _, err := l.Set(ctx, domain.SetRequest{User: u, Target: tg, Kind: k, On: on}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// logEvents returns the whole log.
func logEvents(t *testing.T, s domain.EventStore) []domain.Event {
	t.Helper()
	out, err := domain.AppendEvents(nil, s.ReadEvents(context.Background(), domain.EventFilter{}))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// running is a relay started by a test.
type running struct {
	relay  *relaynats.Relay
	cancel context.CancelFunc
	done   chan error
	// js and stream, when set (relayIntoStream), are where it relays.
	js     jetstream.JetStream
	stream string
}

// startRelay runs a relay until stop (or the test's end).
func startRelay(t *testing.T, s domain.EventStore, cfg relaynats.Config, log *slog.Logger) *running {
	t.Helper()
	r, err := relaynats.NewRelay(s, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &running{relay: r, cancel: cancel, done: make(chan error, 1)}
	go func() { run.done <- r.Run(ctx) }()
	t.Cleanup(func() { run.stop(t) })
	return run
}

// stop cancels the relay and returns Run's result.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("relay did not stop within 30s of its context ending")
		return nil
	}
}

// ended waits up to limit for Run to end on its own and returns its
// error; a relay still running then fails the test, saying still().
func (r *running) ended(t *testing.T, limit time.Duration, still func() string) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(limit):
		t.Fatal(still())
		return nil
	}
}

// relayIntoStream creates a stream of cfg's settings under names of its
// own, writes events to a new log and starts a relay of that log into it,
// logging to log.
func relayIntoStream(t *testing.T, url string, cfg jetstream.StreamConfig, events int, log *slog.Logger) (*running, domain.EventStore) {
	t.Helper()
	n := natstest.UniqueNames(t, url)
	cfg.Name, cfg.Subjects = n.Stream, []string{n.Prefix + ".>"}
	if _, err := natstest.MustJetStream(t, url).CreateStream(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	store := mustStore(t)
	write(t, store, events, "s")
	r := startRelay(t, store, testConfig(url, n), log)
	r.stream = n.Stream
	r.js = natstest.MustJetStream(t, url)
	return r, store
}

// refuses waits up to limit for Run to end with ErrStreamMismatch naming
// want; still running, it relays into what.
func (r *running) refuses(t *testing.T, limit time.Duration, want, what string) {
	t.Helper()
	err := r.ended(t, limit, func() string {
		return fmt.Sprintf("relay runs into %s; it holds %d", what, natstest.Count(t, r.js, r.stream))
	})
	if !errors.Is(err, relaynats.ErrStreamMismatch) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Run = %v, want ErrStreamMismatch naming %q", err, want)
	}
}

// waitFor polls cond until it holds; the limit only guards against a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting (60s) for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// bufLogger logs text to a buffer the test reads.
func bufLogger() (*slog.Logger, *testlog.Buffer) {
	b := &testlog.Buffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelInfo})), b
}

// proxy forwards TCP connections from a local address to NATS; closing it
// cuts every connection, as a network failure would.
type proxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

// startProxy listens on addr and forwards to the NATS server.
func startProxy(t *testing.T, addr string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("proxy listen %s: %v", addr, err)
	}
	p := &proxy{l: l}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

func (p *proxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", natstest.Addr)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { io.Copy(up, c); up.Close() }()
		go func() { io.Copy(c, up); c.Close() }()
	}
}

func (p *proxy) close() {
	p.l.Close()
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
