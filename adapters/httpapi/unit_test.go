package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/storetest"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/testlog"
	"github.com/interactionledger/ledger/projections"
)

func TestProblemFor(t *testing.T) {
	cases := []struct {
		err    error
		status int
	}{
		{paramErrors{{Name: "limit", Reason: "bad"}}, 400},
		{&domain.ValidationError{Field: "user", Reason: "bad"}, 400},
		{fmt.Errorf("cursor: %w", domain.ErrInvalidInput), 400},
		{errUnauthorized("x"), 401},
		{errForbidden("x"), 403},
		{fmt.Errorf("k: %w", domain.ErrUnknownKind), 404},
		{errNotAcceptable("x"), 406},
		{fmt.Errorf("set: %w", domain.ErrPreconditionFailed), 412},
		{errTooLarge("x"), 413},
		{errMediaType("x"), 415},
		{fmt.Errorf("set: %w", domain.ErrIdempotencyMismatch), 422},
		{errRateLimited(time.Second), 429},
		{errNotCaughtUp("x"), 503},
		{fmt.Errorf("append: %w", domain.ErrUnavailable), 503},
		{fmt.Errorf("append: %w", domain.ErrClosed), 503},
		{errors.New("boom"), 500},
	}
	for _, c := range cases {
		p := problemFor(c.err, true)
		if p.Status != c.status || p.Title == "" || !strings.HasPrefix(p.Type, "urn:ledger:problem:") {
			t.Errorf("%v: %+v, want %d", c.err, p, c.status)
		}
		if c.status == 400 && len(p.InvalidParams) == 0 {
			t.Errorf("%v: 400 without invalid_params", c.err)
		}
		if (c.status == 503 || c.status == 429) && p.RetryAfter <= 0 {
			t.Errorf("%v: %d without Retry-After", c.err, c.status)
		}
	}
}

func TestNegotiate(t *testing.T) {
	offers := []string{mediaJSON, mediaNDJSON, mediaCSV}
	cases := map[string]string{
		"":                                      mediaJSON,
		"*/*":                                   mediaJSON,
		"text/csv":                              mediaCSV,
		"application/x-ndjson, */*;q=0.1":       mediaNDJSON,
		"text/*":                                mediaCSV,
		"application/json;q=0.5, text/csv":      mediaCSV,
		"text/html, application/*;q=0.9":        mediaJSON,
		"application/json;q=0, application/*":   mediaNDJSON,
		"image/png":                             "",
		"application/json;q=0":                  "",
		"application/json;q=2, text/csv;q=oops": "",
	}
	for accept, want := range cases {
		var hs []string
		if accept != "" {
			hs = []string{accept}
		}
		got, ok := negotiate(hs, offers...)
		if (want == "") == ok || (ok && got != want) {
			t.Errorf("Accept %q: %q %v, want %q", accept, got, ok, want)
		}
	}
}

func TestHubDropsSlowClient(t *testing.T) {
	m := NewMetrics()
	h := newHub(2, m)
	slow, fast := h.subscribe(nil), h.subscribe(nil)
	ev := func(pos int64) domain.Event {
		return domain.Event{Position: pos, Type: domain.EventAdded, StreamVersion: 1}
	}
	for pos := int64(1); pos <= 3; pos++ {
		h.publish(ev(pos), map[string]int64{"like": pos})
		<-fast.ch
	}
	if !slow.lost.Load() {
		t.Fatal("slow subscriber not dropped")
	}
	n := 0
	for range slow.ch {
		n++
	}
	if n != 2 || fast.lost.Load() {
		t.Fatalf("slow got %d buffered frames; fast lost %v", n, fast.lost.Load())
	}
	h.unsubscribe(fast)
	h.publish(ev(4), nil)
}

// TestHubIndexesByTarget: a filtered subscriber gets its targets' events
// only, each once, and leaves the index when it unsubscribes or is
// dropped, from every one of its targets.
func TestHubIndexesByTarget(t *testing.T) {
	h := newHub(4, NewMetrics())
	a1, a2, c3 := storetest.MustTarget(t, "article/a-1"), storetest.MustTarget(t, "article/a-2"), storetest.MustTarget(t, "comment/c-3")
	one, two, all := h.subscribe([]domain.Target{a1}), h.subscribe([]domain.Target{a2, a1}), h.subscribe(nil)
	pos := int64(0)
	publish := func(t domain.Target) {
		pos++
		h.publish(domain.Event{Position: pos, Type: domain.EventAdded, StreamVersion: 1, Target: t}, map[string]int64{"like": 1})
	}
	publish(a1)
	publish(a2)
	publish(c3)
	if len(one.ch) != 1 || len(two.ch) != 2 || len(all.ch) != 3 || h.published.Load() != 3 {
		t.Fatalf("frames: a-1's %d, a-2's and a-1's %d, all's %d (want 1, 2, 3); published %d", len(one.ch), len(two.ch), len(all.ch), h.published.Load())
	}
	if f := <-two.ch; f.pos != 1 {
		t.Fatalf("a-2's and a-1's first frame at %d, want 1", f.pos)
	}
	for range 4 {
		publish(a2) // two's buffer overflows: it is dropped from a-1's set too
	}
	if !two.lost.Load() || one.lost.Load() {
		t.Fatalf("lost: two %v (want true), one %v", two.lost.Load(), one.lost.Load())
	}
	if _, ok := h.byTarget[a2]; ok || len(h.byTarget[a1]) != 1 {
		t.Fatalf("index after the drop: %v", h.byTarget)
	}
	h.unsubscribe(one)
	h.unsubscribe(all)
	if len(h.byTarget) != 0 || len(h.all) != 0 {
		t.Fatalf("index after unsubscribing: %v %v", h.byTarget, h.all)
	}
}

// BenchmarkHubPublish publishes events to 2,000 subscribers, each on its
// own target (filtered) or all unfiltered; the buffers are emptied every
// 200 events, outside the timer.
func BenchmarkHubPublish(b *testing.B) {
	const subs = 2000
	for _, filtered := range []bool{true, false} {
		b.Run(map[bool]string{true: "filtered", false: "unfiltered"}[filtered], func(b *testing.B) {
			h := newHub(256, NewMetrics())
			targets := make([]domain.Target, subs)
			ss := make([]*subscriber, subs)
			for i := range ss {
				targets[i] = storetest.MustTarget(b, fmt.Sprintf("article/a-%d", i))
				if filtered {
					ss[i] = h.subscribe(targets[i : i+1])
				} else {
					ss[i] = h.subscribe(nil)
				}
			}
			counts := map[string]int64{"like": 3, "collect": 1}
			u, _ := domain.NewUserID("u1")
			e := domain.Event{Type: domain.EventAdded, StreamVersion: 1, Kind: mustKind(b, "like"), User: u, OccurredAt: time.Now(), RecordedAt: time.Now()}
			b.ResetTimer()
			for i := range b.N {
				if i%200 == 199 {
					b.StopTimer()
					for _, s := range ss {
						for len(s.ch) > 0 {
							<-s.ch
						}
					}
					b.StartTimer()
				}
				e.Position, e.Target = int64(i+1), targets[i%subs]
				h.publish(e, counts)
			}
			b.StopTimer()
			for _, s := range ss {
				if s.lost.Load() {
					b.Fatal("a subscriber was dropped")
				}
			}
		})
	}
}

func TestRenderEvent(t *testing.T) {
	e := domain.Event{Position: 7, Type: domain.EventCancelled, StreamVersion: 2, Kind: mustKind(t, "like")}
	frame := string(renderEvent(e, map[string]int64{"like": 3}))
	if !strings.HasPrefix(frame, "id: 7\nevent: interaction.cancelled\ndata: {") || !strings.HasSuffix(frame, `,"counts":{"like":3}}`+"\n\n") {
		t.Fatalf("frame %q", frame)
	}
	data := strings.TrimSuffix(strings.SplitN(frame, "data: ", 2)[1], "\n\n")
	var v map[string]any
	if err := json.Unmarshal([]byte(data), &v); err != nil || v["position"] != float64(7) {
		t.Fatalf("data %q: %v", data, err)
	}
}

func mustKind(tb testing.TB, s string) domain.Kind {
	tb.Helper()
	k, err := domain.ParseKind(s)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func TestUserLimits(t *testing.T) {
	l := newUserLimits(1, 2)
	now := time.Now()
	for i := range 2 {
		if ok, _ := l.allow("u1", now); !ok {
			t.Fatalf("write %d refused", i)
		}
	}
	ok, wait := l.allow("u1", now)
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("third write: %v %v", ok, wait)
	}
	if ok, _ := l.allow("u2", now); !ok {
		t.Fatal("another user limited")
	}
	if ok, _ := l.allow("u1", now.Add(time.Second)); !ok {
		t.Fatal("not refilled")
	}
	var off *userLimits
	if ok, _ := off.allow("u1", now); !ok {
		t.Fatal("disabled limiter refused")
	}
}

func TestRateLimit(t *testing.T) {
	e := MustEnv(t, func(c *Config) { c.WriteRate = 0.001; c.WriteBurst = 1 })
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	res, _ := e.do("PUT", "/v1/targets/article/a-1/collect/u1", "")
	if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u2", "")
}

// TestRateLimitTinyRate: a rate so low that the limiter answers "never"
// is a 429 with Retry-After capped at a day; it was -9223372035 (the
// rounding up overflowed).
func TestRateLimitTinyRate(t *testing.T) {
	e := MustEnv(t, func(c *Config) { c.WriteRate = 1e-300; c.WriteBurst = 1 })
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	res, _ := e.do("PUT", "/v1/targets/article/a-1/collect/u1", "")
	if res.StatusCode != 429 || res.Header.Get("Retry-After") != "86400" {
		t.Fatalf("status %d Retry-After %q, want 429 and 86400", res.StatusCode, res.Header.Get("Retry-After"))
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int64{
		time.Nanosecond: 1, time.Second: 1, 1500 * time.Millisecond: 2,
		maxRetryAfter - time.Second: 86399, maxRetryAfter: 86400,
		math.MaxInt64: 86400, math.MaxInt64 - time.Second + 2: 86400,
	} {
		if got := retryAfterSeconds(d); got != want {
			t.Errorf("retryAfterSeconds(%d) = %d, want %d", d, got, want)
		}
	}
}

// TestWriteRateFinite: NaN (which turned the limit off) and the
// infinities are refused; a negative rate is named alone (there is no
// write burst flag to name).
func TestWriteRateFinite(t *testing.T) {
	for _, r := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), -1} {
		c := DefaultConfig()
		c.WriteRate = r
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("write rate %v", r)) || strings.Contains(err.Error(), "burst") {
			t.Errorf("write rate %v: %v, want it alone refused", r, err)
		}
	}
}

// stuckRead is a read model that never applies anything.
type stuckRead struct{ ReadModel }

func (stuckRead) Applied() int64 { return 0 }

func (stuckRead) WaitFor(ctx context.Context, _ int64) error {
	<-ctx.Done()
	return ctx.Err()
}

// unreadableRead is a read model whose views file cannot be read.
type unreadableRead struct{ ReadModel }

func (unreadableRead) Target(context.Context, domain.Target, *domain.UserID) (projections.TargetView, error) {
	return projections.TargetView{}, fmt.Errorf("read targets: database disk image is malformed: %w", projections.ErrUnreadable)
}

// A views file that cannot be read answers 503 saying so, not 500.
func TestUnreadableViewsAnswer503(t *testing.T) {
	e := MustEnv(t, nil)
	srv, err := New(DefaultConfig(), Deps{Ledger: e.srv.deps.Ledger, Log: e.store, Read: unreadableRead{e.set}, Writable: e.srv.deps.Writable}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, newRequest("GET", "/v1/targets/article/a-1", nil))
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "read model cannot be read") {
		t.Fatalf("unreadable views: %d %s", rec.Code, rec.Body)
	}
}

// A write whose read afterwards fails (the views file unreadable, or
// stopped because the log moved back under the node) is durable all the
// same: its 503 says so and carries its position, as a write not applied
// in time does, rather than a store-unavailable that reads as a failed
// write.
func TestWriteCommittedNotReadable(t *testing.T) {
	e := MustEnv(t, nil)
	srv, err := New(DefaultConfig(), Deps{Ledger: e.srv.deps.Ledger, Log: e.store, Read: unreadableRead{e.set}, Writable: e.srv.deps.Writable}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, newRequest("PUT", "/v1/targets/article/a-1/like/u1", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "not-caught-up") ||
		!strings.Contains(rec.Body.String(), "durable at position 1 (changed: true)") ||
		!strings.Contains(rec.Body.String(), "malformed") {
		t.Fatalf("unreadable views after a write: %d %s", rec.Code, rec.Body)
	}
	if p := mustDecode[Problem](t, rec.Body.Bytes()); p.Position != 1 {
		t.Fatalf("the problem's position %d, want 1 (the durable event's): %s", p.Position, rec.Body)
	}
}

// A write whose event the read model does not apply in time answers 503
// saying the write is durable and how to get its answer; the retry with the
// same key (here on a node that caught up) answers it and appends nothing.
func TestWriteCommittedNotApplied(t *testing.T) {
	e := MustEnv(t, nil)
	cfg := DefaultConfig()
	cfg.ConsistencyTimeout = 10 * time.Millisecond
	srv, err := New(cfg, Deps{Ledger: e.srv.deps.Ledger, Log: e.store, Read: stuckRead{e.set}, Writable: e.srv.deps.Writable}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := newRequest("PUT", "/v1/targets/article/a-1/like/u1", nil)
	req.Header.Set("Idempotency-Key", "k1")
	srv.Handler().ServeHTTP(rec, req)
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" ||
		!strings.Contains(rec.Body.String(), "durable at position 1 (changed: true)") ||
		!strings.Contains(rec.Body.String(), "min_position=1") {
		t.Fatalf("stuck read model: %d %s, want the write durable and a read with min_position=1 advised", rec.Code, rec.Body)
	}
	if p := mustDecode[Problem](t, rec.Body.Bytes()); p.Position != 1 {
		t.Fatalf("the problem's position %d, want 1 (the durable event's): %s", p.Position, rec.Body)
	}
	b := e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "", "Idempotency-Key", "k1")
	if got := mustDecode[struct {
		Changed  bool
		Position int64
	}](t, b); !got.Changed || got.Position != 1 {
		t.Fatalf("retry answered %s, want the first outcome at position 1", b)
	}
}

// A retry of a recorded request (same Idempotency-Key) appends nothing, so
// the rate does not refuse it: it gets the first outcome. A new key, or
// the key with another request, is still limited or refused.
func TestRateLimitLetsRetriesThrough(t *testing.T) {
	e := MustEnv(t, func(c *Config) { c.WriteRate = 0.001; c.WriteBurst = 1 })
	first := e.expect(200, "DELETE", "/v1/targets/article/a-1/like/u1", "", "Idempotency-Key", "k1")
	again := e.expect(200, "DELETE", "/v1/targets/article/a-1/like/u1", "", "Idempotency-Key", "k1")
	if string(again) != string(first) {
		t.Errorf("retry answered %s, first %s", again, first)
	}
	e.expect(429, "DELETE", "/v1/targets/article/a-1/like/u1", "", "Idempotency-Key", "k2")
	e.expect(422, "PUT", "/v1/targets/article/a-1/like/u1", "", "Idempotency-Key", "k1")
}

func TestOpenAPICoverage(t *testing.T) {
	e := MustEnv(t, nil)
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("document: %v %q", err, doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	served := e.srv.Routes()
	for _, r := range e.srv.Routes() {
		// The mux answers HEAD on every GET route: the document names it.
		if path, ok := strings.CutPrefix(r, "GET "); ok {
			served = append(served, "HEAD "+path)
		}
	}
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("served and documented routes differ:\nserved     %v\ndocumented %v", served, documented)
	}
}

func TestRecover(t *testing.T) {
	e := MustEnv(t, nil)
	e.srv.mux.HandleFunc("GET /test/panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
	e.expect(500, "GET", "/test/panic", "")
	if !strings.Contains(e.logs.String(), "panic=boom") {
		t.Fatal("panic not logged")
	}
	e.expect(200, "GET", "/healthz", "")
}

// TestNoInputGets500 throws malformed paths, queries and headers at every
// route: none may answer 500.
func TestNoInputGets500(t *testing.T) {
	e := MustEnv(t, func(c *Config) { c.ConsistencyTimeout = 10 * time.Millisecond })
	rng := rand.New(rand.NewPCG(1, 2))
	junk := []string{"", "x", "%00", "%2F", "-1", "99999999999999999999", "%FF%FE", strings.Repeat("a", 300), "a%20b", "..", "{}", "%22v1%22"}
	pick := func() string { return junk[rng.IntN(len(junk))] }
	methods := []string{"GET", "PUT", "DELETE", "POST", "HEAD", "OPTIONS"}
	for range 400 {
		path := strings.NewReplacer("{type}", pick(), "{id}", pick(), "{kind}", pick(), "{user}", pick()).
			Replace(e.srv.routes[rng.IntN(len(e.srv.routes))].pattern)
		q := fmt.Sprintf("?limit=%s&cursor=%s&viewer=%s&min_position=%s&t=%s&after=%s&since=%s", pick(), pick(), pick(), pick(), pick(), pick(), pick())
		req, err := http.NewRequestWithContext(t.Context(), methods[rng.IntN(len(methods))], e.http.URL+path+q, strings.NewReader(pick()))
		if err != nil {
			continue
		}
		for _, h := range []string{"If-Match", "Idempotency-Key", "Ledger-Min-Position", "Accept", "Content-Type", "Last-Event-ID", "If-None-Match", "Authorization"} {
			if rng.IntN(3) == 0 {
				req.Header.Set(h, pick())
			}
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", req.Method, req.URL, err)
		}
		res.Body.Close()
		if res.StatusCode >= 500 && res.StatusCode != 503 {
			t.Fatalf("%s %s: %d", req.Method, req.URL, res.StatusCode)
		}
	}
}

func TestShuttingDown(t *testing.T) {
	e := MustEnv(t, nil)
	e.srv.closing.Store(true)
	res, _ := e.do("GET", "/v1/targets/article/a-1", "")
	if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	e.srv.closing.Store(false)
}

func TestHead(t *testing.T) {
	e := MustEnv(t, nil)
	for _, path := range []string{"/v1/events", "/v1/events/stream", "/v1/targets/article/a-1"} {
		res, b := e.do("HEAD", path, "")
		if res.StatusCode != 200 || len(b) != 0 {
			t.Errorf("HEAD %s: %d %q", path, res.StatusCode, b)
		}
	}
}

// TestOpenAPIRefs checks that every $ref of the document resolves and that
// every operation declares its path's parameters.
func TestOpenAPIRefs(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	resolve := func(ref string) (map[string]any, bool) {
		var node any = doc
		for part := range strings.SplitSeq(strings.TrimPrefix(ref, "#/"), "/") {
			m, ok := node.(map[string]any)
			if !ok {
				return nil, false
			}
			node = m[part]
		}
		m, ok := node.(map[string]any)
		return m, ok
	}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if _, ok := resolve(ref); !ok {
					t.Errorf("unresolved $ref %s", ref)
				}
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(doc)
	for path, ops := range doc["paths"].(map[string]any) {
		for method, op := range ops.(map[string]any) {
			declared := map[string]bool{}
			params, _ := op.(map[string]any)["parameters"].([]any)
			for _, p := range params {
				pm := p.(map[string]any)
				if ref, ok := pm["$ref"].(string); ok {
					pm, _ = resolve(ref)
				}
				if pm["in"] == "path" {
					declared[pm["name"].(string)] = true
				}
			}
			for seg := range strings.SplitSeq(path, "/") {
				if name, ok := strings.CutPrefix(seg, "{"); ok && !declared[strings.TrimSuffix(name, "}")] {
					t.Errorf("%s %s does not declare %s", method, path, seg)
				}
			}
		}
	}
}

// TestObserveCheckpoint: each WAL checkpoint is counted by file and
// result, and timed by file.
func TestObserveCheckpoint(t *testing.T) {
	m := NewMetrics()
	m.ObserveCheckpoint("log", 30*time.Millisecond, nil)
	m.ObserveCheckpoint("log", time.Millisecond, errors.New("disk full"))
	m.ObserveCheckpoint("views", 2*time.Millisecond, nil)
	rec := httptest.NewRecorder()
	m.handler().ServeHTTP(rec, newRequest("GET", "/metrics", nil))
	for _, want := range []string{`ledger_wal_checkpoints_total{file="log",result="ok"} 1`,
		`ledger_wal_checkpoints_total{file="log",result="failed"} 1`,
		`ledger_wal_checkpoints_total{file="views",result="ok"} 1`,
		`ledger_wal_checkpoint_duration_seconds_count{file="log"} 2`,
		`ledger_wal_checkpoint_duration_seconds_sum{file="views"} 0.002`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestApplyLagClockAhead: an event recorded by a clock ahead of this
// node's (recorded_at in its future) has no lag this node can measure: it
// is counted, with how far ahead it was, and left out of the lag
// histogram, where it was a 0 that claimed it was applied at once.
func TestApplyLagClockAhead(t *testing.T) {
	m := NewMetrics()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m.observeApplied(domain.Event{RecordedAt: now.Add(1500 * time.Millisecond)}, now)
	wantMetrics(t, m, "ledger_projection_lag_seconds_count 0", "ledger_projection_lag_clock_ahead_events_total 1",
		"ledger_projection_lag_clock_ahead_seconds 1.5")
	m.observeApplied(domain.Event{RecordedAt: now.Add(-20 * time.Millisecond)}, now)
	wantMetrics(t, m, "ledger_projection_lag_seconds_count 1", "ledger_projection_lag_seconds_sum 0.02",
		"ledger_projection_lag_clock_ahead_events_total 1", "ledger_projection_lag_clock_ahead_seconds 0")
}

// wantMetrics fails unless m's /metrics holds every line of want.
func wantMetrics(t *testing.T, m *Metrics, want ...string) {
	t.Helper()
	rec := httptest.NewRecorder()
	m.handler().ServeHTTP(rec, newRequest("GET", "/metrics", nil))
	lines := strings.Split(rec.Body.String(), "\n")
	for _, w := range want {
		if !slices.Contains(lines, w) {
			t.Errorf("metrics lack %q", w)
		}
	}
}

// enteredRead is stuckRead that says when a request starts waiting.
type enteredRead struct {
	stuckRead
	waiting chan struct{}
}

func (r enteredRead) WaitFor(ctx context.Context, pos int64) error {
	close(r.waiting)
	return r.stuckRead.WaitFor(ctx, pos)
}

// A read waiting for min_position when shutdown starts is answered 503
// shutting-down at once; the drain used to cut it without an answer.
func TestShutdownAnswersWaitingReads(t *testing.T) {
	e := MustEnv(t, nil)
	cfg := DefaultConfig()
	cfg.ConsistencyTimeout, cfg.WriteTimeout = time.Hour, 2*time.Hour
	read := enteredRead{waiting: make(chan struct{})}
	read.ReadModel = e.set
	srv := e.sideServer(cfg, read, nil, nil)
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Handler().ServeHTTP(rec, newRequestWithContext(t.Context(), "GET", "/v1/targets/article/a-1?min_position=5", nil))
	}()
	<-read.waiting
	srv.closing.Store(true)
	srv.stopOnce.Do(func() { close(srv.stop) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a read waiting for min_position still waits 10 s after shutdown began")
	}
	if p := mustDecode[Problem](t, rec.Body.Bytes()); rec.Code != 503 || p.Type != "urn:ledger:problem:shutting-down" {
		t.Fatalf("waiting read at shutdown: %d %s, want 503 shutting-down", rec.Code, rec.Body)
	}
}

// A flood of new users at a low rate (no bucket refills between them)
// sweeps the map a few times, not once per user as it did (each sweep
// scanning the whole map under the lock: 20 ms per new user at 100,000),
// and the map stays bounded.
func TestRateLimitFloodOfUsers(t *testing.T) {
	defer func(idle, all int) { maxIdleUsers, maxUsers = idle, all }(maxIdleUsers, maxUsers)
	maxIdleUsers, maxUsers = 100, 1000
	l := newUserLimits(0.001, 1)
	now := time.Now()
	for i := range 5000 {
		if ok, _ := l.allow(fmt.Sprintf("u%d", i), now); !ok {
			t.Fatalf("user %d's first write refused", i)
		}
	}
	// Below maxUsers the map doubles between sweeps; at it, a sweep frees a
	// tenth (100 users here): about 45 sweeps, against one per user.
	if l.sweeps > 5000/50 {
		t.Errorf("%d sweeps for 5,000 new users, want at most one per 50", l.sweeps)
	}
	if len(l.users) > maxUsers {
		t.Errorf("%d buckets kept, want at most %d", len(l.users), maxUsers)
	}
	if ok, _ := l.allow("u4999", now); ok {
		t.Error("a user just seen (bucket empty) was allowed again at once")
	}
}

// A GET with a body is 400: the streaming answers lift the read deadline,
// and a body trickled to them held the request (and a read connection of
// the log) for ever.
func TestGetWithBody(t *testing.T) {
	e := MustEnv(t, nil)
	for _, path := range []string{"/v1/events?after=0", "/v1/events/stream?after=0", "/v1/targets/article/a-1"} {
		for _, chunked := range []bool{false, true} {
			req := newRequest("GET", path, strings.NewReader("x"))
			req.Header.Set("Accept", "*/*")
			if chunked {
				req.ContentLength = -1
			}
			rec := httptest.NewRecorder()
			e.srv.Handler().ServeHTTP(rec, req)
			if rec.Code != 400 || !strings.Contains(rec.Body.String(), "takes no body") {
				t.Errorf("GET %s with a body (chunked %t): %d %s", path, chunked, rec.Code, rec.Body)
			}
		}
	}
}

// A node whose projections are beyond its log's head (the log was replaced
// under it) is not ready; it answered ready.
func TestReadyzAheadOfTheLog(t *testing.T) {
	e := MustEnv(t, nil)
	srv, err := New(DefaultConfig(), Deps{Ledger: e.srv.deps.Ledger, Log: e.store, Read: laggingRead{e.set, 12}, Writable: e.srv.deps.Writable}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, newRequest("GET", "/readyz", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "beyond the log head") {
		t.Fatalf("projections at 12 over an empty log: %d %s, want 503 naming it", rec.Code, rec.Body)
	}
}

// A HEAD answer's access line counts no body bytes: none are sent.
func TestHeadLogsNoBytes(t *testing.T) {
	e := MustEnv(t, nil)
	logs := &testlog.Buffer{}
	srv := e.sideServer(DefaultConfig(), nil, nil, newTestLogger(logs))
	srv.Handler().ServeHTTP(httptest.NewRecorder(), newRequest("HEAD", "/openapi.json", nil))
	if line := grepLines(logs.String(), "msg=request"); !strings.Contains(line, "bytes=0 ") {
		t.Fatalf("HEAD /openapi.json logged %s, want bytes=0", line)
	}
}

// A write on a node whose read model stopped for good (the log moved
// under it: a restart is the remedy) said both "restart it" and "it goes on
// by itself once the cause is fixed"; only a projection that failed on an
// event goes on by itself.
func TestWriteOnAStoppedReadModelNamesTheRestartOnly(t *testing.T) {
	e := MustEnv(t, nil)
	e.set.Appending()(context.Background(), 0) // an append at a position applied: the log moved back
	res, body := e.quick(50*time.Millisecond).do("PUT", "/v1/targets/article/a-1/like/u1", "")
	if res.StatusCode != 503 || !strings.Contains(string(body), "not-caught-up") || !strings.Contains(string(body), "restart it") ||
		strings.Contains(string(body), "goes on by itself") {
		t.Fatalf("a write on a stopped read model: %d %s; want 503 naming the restart alone", res.StatusCode, body)
	}
}

// TestETagTagsTheContent: two representations of one target at one
// position (a log restored from an older copy gives a later event a
// position the old log had used) have ETags as different as their counts
// or the viewer's flags; equal ones are tagged alike.
func TestETagTagsTheContent(t *testing.T) {
	e := MustEnv(t, nil)
	user, _ := domain.NewUserID("u1")
	view := func(like, collect int64, liked bool) projections.TargetView {
		return projections.TargetView{Counts: map[string]int64{"like": like, "collect": collect},
			Viewer: map[string]bool{"like": liked}, Position: 7}
	}
	base := e.srv.etag(view(3, 1, true), &user)
	if again := e.srv.etag(view(3, 1, true), &user); again != base {
		t.Fatalf("equal representations: %s and %s", base, again)
	}
	for name, v := range map[string]projections.TargetView{
		"another like count":    view(2, 1, true),
		"another collect count": view(3, 0, true),
		"the viewer's flag":     view(3, 1, false),
	} {
		if tag := e.srv.etag(v, &user); tag == base {
			t.Errorf("%s: the same ETag %s", name, tag)
		}
	}
	if e.srv.etag(view(3, 1, true), nil) != e.srv.etag(view(3, 1, false), nil) {
		t.Error("without a viewer the viewer's flags are no part of the representation")
	}
}

// A /readyz that answers 503 logs its access line, with the reason, and no
// "request failed" warning: a load balancer probes every node every few
// seconds, and during an outage (already logged once, then every 10 s, by
// what failed) each probe added a warning with the whole cause.
func TestNotReadyLogsNoFailure(t *testing.T) {
	e := MustEnv(t, nil)
	logs := &testlog.Buffer{}
	down := func(context.Context) error { return errors.New("database connection failed") }
	srv, err := New(DefaultConfig(), Deps{Ledger: e.srv.deps.Ledger, Log: e.store, Read: e.set, Writable: down}, newTestLogger(logs))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, newRequest("GET", "/readyz", nil))
		if rec.Code != 503 || !strings.Contains(rec.Body.String(), "database connection failed") {
			t.Fatalf("/readyz over a store that is down: %d %s, want 503 naming the cause", rec.Code, rec.Body)
		}
	}
	access := strings.Count(logs.String(), `msg=request `)
	if strings.Contains(logs.String(), "request failed") || access != 3 ||
		strings.Count(logs.String(), `detail="the store is not writable: database connection failed"`) != 3 {
		t.Fatalf("three /readyz probes of a node that is not ready logged:\n%s\nwant three access lines with the reason, no failure", logs)
	}
}

// /healthz, /readyz and /metrics answer Cache-Control: no-store: without it
// a cache between a load balancer or Prometheus and the node could keep a
// "ready" (or a scrape) while the node is down; only their 503s said so.
func TestOperationsAreNotCached(t *testing.T) {
	e := MustEnv(t, nil)
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		for _, method := range []string{"GET", "HEAD"} {
			rec := httptest.NewRecorder()
			e.srv.Handler().ServeHTTP(rec, newRequest(method, path, nil))
			if rec.Code != 200 || rec.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("%s %s: %d, Cache-Control %q, want 200 and no-store", method, path, rec.Code, rec.Header().Get("Cache-Control"))
			}
		}
	}
}

// sliceLog is a log held in memory that counts its reads; it reads by
// target only.
type sliceLog struct {
	Log
	events []domain.Event
	reads  int
}

func (l *sliceLog) ReadEvents(_ context.Context, f domain.EventFilter) iter.Seq2[domain.Event, error] {
	l.reads++
	return func(yield func(domain.Event, error) bool) {
		n := 0
		for _, e := range l.events {
			if e.Position <= f.After || e.Target.Type() != f.TargetType || e.Target.ID() != f.TargetID {
				continue
			}
			if n++; n > f.Limit || !yield(e, nil) {
				return
			}
		}
	}
}

// TestReplayInterleaved: a replay of 50 targets whose events alternate
// (each read holds events far beyond the batch, more than a replay
// keeps) takes every event of its targets up to applied, in order, once,
// in batches of at most backfillBatch, with about half the reads of a
// read of every target for each batch.
func TestReplayInterleaved(t *testing.T) {
	const targets, each, applied = 50, 40, 2100
	log := &sliceLog{}
	var filters []domain.EventFilter
	for i := range targets {
		filters = append(filters, domain.EventFilter{TargetType: "article", TargetID: fmt.Sprintf("a-%d", i)})
	}
	var want []int64
	for p := int64(1); p <= targets*each+100; p++ {
		id := fmt.Sprintf("a-%d", p%(targets+1)) // a-50 is another target
		log.events = append(log.events, domain.Event{Position: p, Target: storetest.MustTarget(t, "article/"+id)})
		if p%(targets+1) != targets && p <= applied && p > 7 {
			want = append(want, p)
		}
	}
	rp := newReplay(7, applied, filters)
	var got []int64
	batches := 0
	for rp.to < rp.applied {
		from := rp.to
		batch, err := rp.next(t.Context(), log)
		if err != nil {
			t.Fatal(err)
		}
		if batches++; rp.to <= from || len(batch) > backfillBatch || len(batch) > 0 && batch[len(batch)-1].Position > rp.to {
			t.Fatalf("batch %d after %d: %d events up to %d", batches, from, len(batch), rp.to)
		}
		for _, e := range batch {
			got = append(got, e.Position)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("replayed %d events %v..., want %d: %v...", len(got), got[:min(len(got), 10)], len(want), want[:10])
	}
	// A replay holds maxHeld events: a target's read lasts maxHeld/targets
	// of them, each batch reads about targets*backfillBatch/maxHeld
	// targets (25), not all 50.
	if most := batches * (targets*backfillBatch/maxHeld + 1); log.reads > most {
		t.Errorf("%d reads for %d batches of %d targets, want at most %d", log.reads, batches, targets, most)
	}
}
