package nats_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/eventcodec"
	relaynats "github.com/interactionledger/ledger/adapters/nats"
	"github.com/interactionledger/ledger/adapters/sqlite"
	"github.com/interactionledger/ledger/domain"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsAddr is the NATS server (with JetStream) the tests use.
const natsAddr = "127.0.0.1:4222"

// mustNATS returns the server's URL. An unreachable server fails the test
// with CI=true and skips it, loudly, otherwise.
func mustNATS(t *testing.T) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", natsAddr, 2*time.Second)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("NATS JetStream at %s is unreachable and CI=true: %v (start nats-server -js)", natsAddr, err)
		}
		t.Skipf("SKIPPING: NATS JetStream at %s is unreachable (%v); start nats-server -js to run the relay tests", natsAddr, err)
	}
	c.Close()
	return "nats://" + natsAddr
}

// names are a test's own stream, subject prefix and lock bucket.
type names struct{ stream, prefix, bucket string }

// uniqueNames derives names from the test's name and a random suffix and
// deletes the stream and the bucket when the test ends.
func uniqueNames(t *testing.T, url string) names {
	t.Helper()
	var b strings.Builder
	for _, r := range t.Name() {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	base := b.String()
	if len(base) > 30 {
		base = base[len(base)-30:]
	}
	rnd := make([]byte, 4)
	rand.Read(rnd)
	base += "_" + hex.EncodeToString(rnd)
	n := names{stream: "T_" + base, prefix: "t." + strings.ToLower(base) + ".ev", bucket: "L_" + base}
	t.Cleanup(func() {
		js := mustJS(t, url)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := js.DeleteStream(ctx, n.stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("delete stream %s: %v", n.stream, err)
		}
		if err := js.DeleteKeyValue(ctx, n.bucket); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			t.Errorf("delete bucket %s: %v", n.bucket, err)
		}
	})
	return n
}

// mustJS connects to url for the test's own checks.
func mustJS(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := natsgo.Connect(url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// testConfig is a relay config on the test's names with short delays.
func testConfig(url string, n names) relaynats.Config {
	return relaynats.Config{
		URL: url, Stream: n.stream, SubjectPrefix: n.prefix, LockBucket: n.bucket,
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
	var out []domain.Event
	if err := s.ReadEvents(context.Background(), domain.EventFilter{}, func(e domain.Event) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// running is a relay started by a test.
type running struct {
	relay  *relaynats.Relay
	cancel context.CancelFunc
	done   chan error
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

// streamCount returns how many messages the stream holds (0 when absent).
func streamCount(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// waitStreamHolds waits until the stream holds at least n messages.
func waitStreamHolds(t *testing.T, js jetstream.JetStream, stream string, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("stream %s to hold %d messages", stream, n), func() bool {
		return streamCount(t, js, stream) >= uint64(n)
	})
}

// streamMessages returns every message of the stream in sequence order.
func streamMessages(t *testing.T, js jetstream.JetStream, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*jetstream.RawStreamMsg, 0, info.State.LastSeq)
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}

// checkStreamIsLog checks that the stream holds exactly the log: one
// message per event, in position order, with its subject, headers and
// payload (the bytes /v1/events serves, from the one encoder).
func checkStreamIsLog(t *testing.T, js jetstream.JetStream, n names, s domain.EventStore) {
	t.Helper()
	msgs := streamMessages(t, js, n.stream)
	events := logEvents(t, s)
	if len(msgs) != len(events) {
		t.Errorf("stream holds %d messages, log %d events", len(msgs), len(events))
	}
	for i := range min(len(msgs), len(events)) {
		m, e := msgs[i], events[i]
		if m.Sequence != uint64(i+1) {
			t.Fatalf("message %d has sequence %d", i+1, m.Sequence)
		}
		if want := n.prefix + "." + e.Kind.String() + "." + e.Target.Type(); m.Subject != want {
			t.Fatalf("message %d: subject %q, want %q", i+1, m.Subject, want)
		}
		if got := m.Header.Get(natsgo.MsgIdHdr); got != e.ID.String() {
			t.Fatalf("message %d: Nats-Msg-Id %q, want event id %s (position %d)", i+1, got, e.ID, e.Position)
		}
		if got := m.Header.Get(relaynats.HeaderPosition); got != strconv.FormatInt(e.Position, 10) {
			t.Fatalf("message %d: Ledger-Position %q, want %d", i+1, got, e.Position)
		}
		if !bytes.Equal(m.Data, eventcodec.MarshalEvent(e)) {
			t.Fatalf("message %d: payload\n%s\nwant\n%s", i+1, m.Data, eventcodec.MarshalEvent(e))
		}
	}
}

// syncBuffer is a log sink shared by goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// bufLogger logs text to a buffer the test reads.
func bufLogger() (*slog.Logger, *syncBuffer) {
	b := &syncBuffer{}
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

// startProxy listens on addr and forwards to natsAddr.
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
		up, err := net.Dial("tcp", natsAddr)
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
