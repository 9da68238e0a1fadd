package httpapi

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/testlog"
	"github.com/interactionledger/ledger/projections"
)

// guardedRead is a read model that counts the calls the server makes
// before it is marked open, but for Applied (the metrics' gauge), which
// Opening allows.
type guardedRead struct {
	ReadModel
	open  *atomic.Bool
	early *atomic.Int64
}

func (g guardedRead) touch() {
	if !g.open.Load() {
		g.early.Add(1)
	}
}

func (g guardedRead) Target(ctx context.Context, t domain.Target, v *domain.UserID) (projections.TargetView, error) {
	g.touch()
	return g.ReadModel.Target(ctx, t, v)
}

func (g guardedRead) Targets(ctx context.Context, ts []domain.Target, v *domain.UserID) ([]projections.TargetView, error) {
	g.touch()
	return g.ReadModel.Targets(ctx, ts, v)
}

func (g guardedRead) Actors(ctx context.Context, t domain.Target, k domain.Kind, limit int, cursor string) (projections.Page[projections.Actor], error) {
	g.touch()
	return g.ReadModel.Actors(ctx, t, k, limit, cursor)
}

func (g guardedRead) Collection(ctx context.Context, u domain.UserID, k domain.Kind, tt string, limit int, cursor string) (projections.Page[projections.Item], error) {
	g.touch()
	return g.ReadModel.Collection(ctx, u, k, tt, limit, cursor)
}

func (g guardedRead) WaitFor(ctx context.Context, pos int64) error {
	g.touch()
	return g.ReadModel.WaitFor(ctx, pos)
}

func (g guardedRead) Err() error     { g.touch(); return g.ReadModel.Err() }
func (g guardedRead) Stopped() error { g.touch(); return g.ReadModel.Stopped() }

type guardedLedger struct {
	Ledger
	guardedRead
}

func (g guardedLedger) Set(ctx context.Context, req domain.SetRequest) (domain.Outcome, error) {
	g.touch()
	return g.Ledger.Set(ctx, req)
}

func (g guardedLedger) Recorded(ctx context.Context, req domain.SetRequest) (domain.Outcome, bool, error) {
	g.touch()
	return g.Ledger.Recorded(ctx, req)
}

// TestOpeningAnswers: a server whose read model is still opening answers
// its liveness, metrics and OpenAPI document, says why it is not ready,
// and answers every other route 503 "starting" with Retry-After and no
// Ledger-Position, without calling its read model or ledger; once the
// opening is done it answers as ever. (A node that built its views file
// before listening refused connections for the whole build, so a liveness
// probe could kill it mid-build.)
func TestOpeningAnswers(t *testing.T) {
	e := MustEnv(t, nil)
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	open, early := &atomic.Bool{}, &atomic.Int64{}
	read := guardedRead{ReadModel: e.set, open: open, early: early}
	opening, logs := NewOpening("opening the views file"), &testlog.Buffer{}
	srv, err := New(e.srv.cfg, Deps{Ledger: guardedLedger{e.srv.deps.Ledger, read}, Log: e.store, Read: read,
		Writable: e.srv.deps.Writable, Opening: opening}, newTestLogger(logs))
	if err != nil {
		t.Fatal(err)
	}
	q := e.serving(srv)
	for _, path := range []string{"/healthz", "/metrics", "/openapi.json"} {
		q.expect(200, "GET", path, "")
	}
	opening.Report("building the views file from the log (read: 10 of 40)")
	b := q.expect(503, "GET", "/readyz", "")
	if p := mustDecode[Problem](t, b); p.Type != "urn:ledger:problem:not-ready" || !strings.Contains(p.Detail, "starting: building the views file from the log (read: 10 of 40)") {
		t.Errorf("/readyz while opening: %s", b)
	}
	for _, r := range [][2]string{
		{"GET", "/v1/targets/article/a-1?viewer=u1"}, {"GET", "/v1/targets?t=article/a-1"},
		{"GET", "/v1/targets/article/a-1/like"}, {"GET", "/v1/users/u1/like"}, {"GET", "/v1/events"},
		{"GET", "/v1/events/stream"}, {"PUT", "/v1/targets/article/a-2/like/u1"}, {"DELETE", "/v1/targets/article/a-1/like/u1"},
	} {
		res, b := q.do(r[0], r[1], "")
		p := mustDecode[Problem](t, b)
		if res.StatusCode != 503 || p.Type != "urn:ledger:problem:starting" || !strings.Contains(p.Detail, "(read: 10 of 40)") ||
			res.Header.Get("Retry-After") != "5" || res.Header.Get("Ledger-Position") != "" || res.Header.Get("Ledger-Log") == "" {
			t.Errorf("%s %s while opening: %d %v %s", r[0], r[1], res.StatusCode, res.Header, b)
		}
	}
	q.expect(404, "GET", "/v1/nothing-here", "")
	if n := early.Load(); n != 0 {
		t.Errorf("%d calls of the read model or ledger before it was open", n)
	}
	if strings.Contains(logs.String(), "request failed") {
		t.Errorf("the 503s while opening logged warnings:\n%s", logs)
	}
	open.Store(true)
	opening.Done()
	q.expect(200, "GET", "/readyz", "")
	res, b := q.do("GET", "/v1/targets/article/a-1?viewer=u1", "")
	if res.StatusCode != 200 || res.Header.Get("Ledger-Position") != "1" || !strings.Contains(string(b), `"like":1`) {
		t.Errorf("after the opening: %d %v %s", res.StatusCode, res.Header, b)
	}
	q.expect(200, "PUT", "/v1/targets/article/a-2/like/u1", "")
	if n, err := e.store.LastPosition(t.Context()); n != 2 || err != nil {
		t.Errorf("log head %d (%v) after the opening's refused write and one write, want 2", n, err)
	}
}

// TestOpeningBeforeTheLog: a server built before its log is open (no
// Deps.Log, its Opening saying so) answers its liveness, metrics and
// OpenAPI document, says on /readyz that it opens the log, and answers
// every other route 503 "starting", a request naming a log included,
// with no Ledger-Log; once SetLog and the opening are done it answers as
// ever, Ledger-Log and all. (A node waiting for another node's migration
// of the log, tens of seconds for an index build, answered nothing: its
// connections waited.)
func TestOpeningBeforeTheLog(t *testing.T) {
	e := MustEnv(t, nil)
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	opening := NewOpening("opening the log")
	srv, err := New(e.srv.cfg, Deps{Ledger: e.srv.deps.Ledger, Read: e.set, Writable: e.srv.deps.Writable, Opening: opening}, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := e.serving(srv)
	for _, path := range []string{"/healthz", "/metrics", "/openapi.json"} {
		if res, b := q.do("GET", path, ""); res.StatusCode != 200 || res.Header.Get("Ledger-Log") != "" {
			t.Errorf("%s before the log is open: %d %v %.200s", path, res.StatusCode, res.Header, b)
		}
	}
	b := q.expect(503, "GET", "/readyz", "")
	if p := mustDecode[Problem](t, b); !strings.Contains(p.Detail, "starting: opening the log") {
		t.Errorf("/readyz before the log is open: %s", b)
	}
	other := "0190d3a4-0000-7000-8000-000000000000"
	for _, r := range [][3]string{
		{"GET", "/v1/targets/article/a-1", ""}, {"GET", "/v1/targets/article/a-1", other},
		{"GET", "/v1/events", ""}, {"PUT", "/v1/targets/article/a-2/like/u1", other},
	} {
		res, b := q.do(r[0], r[1], "", "Ledger-Log", r[2])
		if res.StatusCode != 503 || mustDecode[Problem](t, b).Type != "urn:ledger:problem:starting" || res.Header.Get("Ledger-Log") != "" {
			t.Errorf("%s %s (log %q) before the log is open: %d %v %s", r[0], r[1], r[2], res.StatusCode, res.Header, b)
		}
	}
	if err := srv.SetLog(e.store, 1); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetLog(e.store, 1); err == nil {
		t.Error("SetLog twice: no error")
	}
	opening.Done()
	res, b := q.do("GET", "/v1/targets/article/a-1", "")
	if res.StatusCode != 200 || res.Header.Get("Ledger-Log") != e.store.LogID() || !strings.Contains(string(b), `"like":1`) {
		t.Errorf("after the opening: %d %v %s", res.StatusCode, res.Header, b)
	}
	if _, err := New(e.srv.cfg, Deps{Ledger: e.srv.deps.Ledger, Read: e.set, Writable: e.srv.deps.Writable}, nil); err == nil {
		t.Error("New without Log and without an Opening: no error")
	}
}
