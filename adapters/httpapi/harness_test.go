package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/sqlite"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/testlog"
	"github.com/interactionledger/ledger/projections"
)

// testEnv is a real server over a real SQLite log and real projections in
// t.TempDir(). The projections are fed by a plain tail of the log (the
// production wiring uses the bus; the handlers only see ReadModel).
type testEnv struct {
	t      testing.TB
	store  *sqlite.EventStore
	set    *projections.Set
	views  string // the set's views file
	srv    *Server
	http   *httptest.Server
	logs   *testlog.Buffer
	cancel context.CancelFunc
}

func MustEnv(tb testing.TB, configure func(*Config)) *testEnv {
	tb.Helper()
	return mustEnvDeps(tb, configure, nil)
}

// mustEnvDeps is MustEnv with a hook on the server's Deps as well.
func mustEnvDeps(tb testing.TB, configure func(*Config), configureDeps func(*Deps)) *testEnv {
	tb.Helper()
	ctx, cancel := context.WithCancel(tb.Context())
	path := filepath.Join(tb.TempDir(), "ledger.db")
	store, err := sqlite.Open(ctx, sqlite.Config{Path: path}, nil)
	if err != nil {
		cancel()
		tb.Fatalf("open store: %v", err)
	}
	e := envOver(tb, ctx, cancel, store, projections.ViewsPath(path), configure, configureDeps)
	e.store = store
	return e
}

// envStore is what a testEnv needs of its log.
type envStore interface {
	domain.EventStore
	Log
	Committed() <-chan struct{}
	Close() error
}

// envOver is a testEnv over store (closed at the end, as is ctx by
// cancel), with its views file at views; its store field is left unset.
func envOver(tb testing.TB, ctx context.Context, cancel context.CancelFunc, store envStore, views string,
	configure func(*Config), configureDeps func(*Deps)) *testEnv {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.Kinds = domain.MustKindSet("like", "collect")
	if configure != nil {
		configure(&cfg)
	}
	set, err := projections.Open(ctx, projections.Config{Path: views, Kinds: cfg.Kinds}, store, nil)
	if err != nil {
		cancel()
		store.Close()
		tb.Fatalf("open projections: %v", err)
	}
	logs := &testlog.Buffer{}
	deps := Deps{
		Ledger: domain.NewLedger(store, cfg.Kinds, domain.LedgerConfig{}, nil),
		Log:    store, Read: set,
		Writable: func(ctx context.Context) error { _, err := store.LastPosition(ctx); return err },
	}
	if configureDeps != nil {
		configureDeps(&deps)
	}
	srv, err := New(cfg, deps, newTestLogger(logs))
	if err != nil {
		tb.Fatalf("new server: %v", err)
	}
	unhook := set.OnApplied(func(ae projections.AppliedEvent) { srv.Publish(ae.Event, ae.Counts) })
	done := make(chan struct{})
	go func() { defer close(done); tail(ctx, store, set) }()
	e := &testEnv{t: tb, set: set, views: views, srv: srv, http: httptest.NewServer(srv.Handler()), logs: logs, cancel: cancel}
	tb.Cleanup(func() {
		srv.stopOnce.Do(func() { close(srv.stop) })
		e.http.Close()
		cancel()
		<-done
		unhook()
		set.Close()
		store.Close()
	})
	return e
}

// sideServer is a second server over e's ledger, log and read model, with
// cfg and read (nil: e's) and log (nil: e's store) in their place; logger
// may be nil.
func (e *testEnv) sideServer(cfg Config, read ReadModel, log Log, logger *slog.Logger) *Server {
	e.t.Helper()
	if read == nil {
		read = e.set
	}
	if log == nil {
		log = e.store
	}
	srv, err := New(cfg, Deps{Ledger: e.srv.deps.Ledger, Log: log, Read: read, Writable: e.srv.deps.Writable}, logger)
	if err != nil {
		e.t.Fatal(err)
	}
	return srv
}

// quick is e's ledger, log and read model behind a second server whose
// reads wait only timeout for the read model: a test gets its 503s for a
// read model that is behind at once, while e's own answers wait for the
// applier as long as a server does by default (with a short timeout they
// raced it, and under load a write answered 503 not-caught-up).
func (e *testEnv) quick(timeout time.Duration) *testEnv {
	e.t.Helper()
	return e.quickOver(timeout, nil)
}

// quickOver is quick with read (nil: e's) as its read model.
func (e *testEnv) quickOver(timeout time.Duration, read ReadModel) *testEnv {
	e.t.Helper()
	cfg := e.srv.cfg
	cfg.ConsistencyTimeout = timeout
	return e.serving(e.sideServer(cfg, read, nil, nil))
}

// serving is e with srv (a sideServer) serving in its place.
func (e *testEnv) serving(srv *Server) *testEnv {
	e.t.Helper()
	q := &testEnv{t: e.t, store: e.store, set: e.set, srv: srv, http: httptest.NewServer(srv.Handler()), logs: e.logs, cancel: e.cancel}
	e.t.Cleanup(func() {
		srv.stopOnce.Do(func() { close(srv.stop) })
		q.http.Close()
	})
	return q
}

// newTestLogger logs everything, as text, into w.
func newTestLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tail applies every committed event to every projection, in order.
func tail(ctx context.Context, store envStore, set *projections.Set) {
	for ctx.Err() == nil {
		woken := store.Committed()
		batch, err := domain.AppendEvents(nil, store.ReadEvents(ctx, domain.EventFilter{After: set.Applied(), Limit: 1000}))
		if err == nil && len(batch) > 0 {
			for _, name := range set.Names() {
				if set.Apply(ctx, name, batch) != nil {
					return
				}
			}
			continue
		}
		select {
		case <-woken:
		case <-ctx.Done():
		}
	}
}

// do sends a request and returns the response with its body read.
func (e *testEnv) do(method, path string, body string, header ...string) (*http.Response, []byte) {
	e.t.Helper()
	_, res := e.roundTrip(e.t, method, path, body, header...)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("read body: %v", err)
	}
	return res, b
}

// roundTrip sends a request, with the given header names and values,
// and returns it with its response, whose body the caller closes; t is
// the test (or subtest) that sends it.
func (e *testEnv) roundTrip(t testing.TB, method, path, body string, header ...string) (*http.Request, *http.Response) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.http.URL+path, rd)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return req, res
}

// expect checks the status and returns the body.
func (e *testEnv) expect(status int, method, path, body string, header ...string) []byte {
	e.t.Helper()
	res, b := e.do(method, path, body, header...)
	if res.StatusCode != status {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, res.StatusCode, status, b)
	}
	if status >= 400 {
		if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
			e.t.Fatalf("%s %s: problem with Content-Type %q", method, path, ct)
		}
		var p Problem
		if err := json.Unmarshal(b, &p); err != nil || p.Status != status || p.Type == "" || p.Title == "" {
			e.t.Fatalf("%s %s: bad problem %s (%v)", method, path, b, err)
		}
		if status == 400 && len(p.InvalidParams) == 0 {
			e.t.Fatalf("%s %s: 400 without invalid_params: %s", method, path, b)
		}
	}
	return b
}

func mustDecode[T any](tb testing.TB, b []byte) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		tb.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// newRequest is httptest.NewRequest addressed to this machine: a server
// without tokens refuses its default Host, example.com.
func newRequest(method, target string, body io.Reader) *http.Request {
	return newRequestWithContext(context.Background(), method, target, body)
}

// newRequestWithContext is httptest.NewRequestWithContext addressed to
// this machine.
func newRequestWithContext(ctx context.Context, method, target string, body io.Reader) *http.Request {
	r := httptest.NewRequestWithContext(ctx, method, target, body)
	r.Host = "127.0.0.1"
	return r
}
