package httpapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/testlog"
	"github.com/interactionledger/ledger/projections"
)

// Shutdown and concurrency tests from a stress pass over the round's changes.

// serveOnListener runs a side server of e on a real listener with Publish hooked
// to e's projections; it returns the base URL, and stop which starts the
// shutdown and returns how long Serve took to return and its error.
func serveOnListener(t *testing.T, e *testEnv, cfg Config) (*Server, string, func() (time.Duration, error)) {
	t.Helper()
	logs := &testlog.Buffer{}
	srv := e.sideServer(cfg, nil, nil, newTestLogger(logs))
	unhook := e.set.OnApplied(func(ae projections.AppliedEvent) { srv.Publish(ae.Event, ae.Counts) })
	t.Cleanup(unhook)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	var once sync.Once
	var took time.Duration
	var serr error
	stop := func() (time.Duration, error) {
		once.Do(func() {
			start := time.Now()
			cancel()
			select {
			case serr = <-served:
			case <-time.After(30 * time.Second):
				serr = errors.New("Serve did not return 30 s after shutdown began")
			}
			took = time.Since(start)
		})
		return took, serr
	}
	t.Cleanup(func() { stop() })
	return srv, "http://" + ln.Addr().String(), stop
}

// hammerOneUser has g goroutines take tokens of one user for d, with `now` read
// as writes.go reads it (before allow takes its lock), or under an outer
// lock (in order) when ordered; it returns how many were allowed.
func hammerOneUser(l *userLimits, g int, d time.Duration, ordered bool) int64 {
	var n atomic.Int64
	var outer sync.Mutex
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for range g {
		wg.Go(func() {
			for time.Now().Before(end) {
				var ok bool
				if ordered {
					outer.Lock()
					ok, _ = l.allow("u", time.Now())
					outer.Unlock()
				} else {
					ok, _ = l.allow("u", time.Now())
				}
				if ok {
					n.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return n.Load()
}

// One user's concurrent writes, no sweep involved: the bucket (rate 5/s,
// burst 3) allows at most 3 + 5*2 = 13 writes in 2 s. Timestamps read
// before allow's lock reach the limiter out of order; rate.Limiter then
// moves its clock back and counts the same time twice.
func TestRateLimitConcurrentSameUser(t *testing.T) {
	const rate, burst = 5.0, 3
	d := 2 * time.Second
	limit := int64(burst + rate*d.Seconds() + 1)
	ordered := hammerOneUser(newUserLimits(rate, burst), 16, d, true)
	unordered := hammerOneUser(newUserLimits(rate, burst), 16, d, false)
	t.Logf("allowed in %s: %d with ordered timestamps, %d as writes.go calls allow (limit %d)", d, ordered, unordered, limit)
	if ordered > limit {
		t.Errorf("ordered: %d allowed, limit %d", ordered, limit)
	}
	if unordered > limit {
		t.Errorf("as writes.go calls it: %d allowed in %s, the bucket allows %d", unordered, d, limit)
	}
}

// A live, idle stream (client reading, nothing blocked) at shutdown: does
// it end cleanly (terminating chunk, io.EOF at the client) or is it cut
// (the shutdown's abort racing live's own return on s.stop)?
func TestLiveStreamEndsCleanlyAtShutdown(t *testing.T) {
	e := MustEnv(t, nil)
	var clean, cut int
	var cutErrs []string
	for range 20 {
		cfg := DefaultConfig()
		cfg.Kinds = domain.MustKindSet("like", "collect")
		_, base, stop := serveOnListener(t, e, cfg)
		req, _ := http.NewRequest("GET", base+"/v1/events/stream", nil)
		req.Header.Set("Accept", "text/event-stream")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		rd := bufio.NewReader(res.Body)
		for { // the opening frame
			l, err := rd.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if l == "\n" {
				break
			}
		}
		ended := make(chan error, 1)
		go func() { _, err := io.ReadAll(rd); ended <- err }()
		time.Sleep(5 * time.Millisecond)
		if _, err := stop(); err != nil {
			t.Fatal(err)
		}
		if err := <-ended; err == nil {
			clean++
		} else {
			cut++
			cutErrs = append(cutErrs, err.Error())
		}
		res.Body.Close()
	}
	t.Logf("idle live streams at shutdown: %d ended cleanly, %d cut (%v)", clean, cut, cutErrs[:min(3, len(cutErrs))])
	if cut > 0 {
		t.Errorf("%d of %d idle live streams were cut at shutdown instead of ending cleanly", cut, clean+cut)
	}
}

// slowApply is the read model applying each write 300 ms after it
// commits (a busy applier): WaitFor returns 300 ms after the real one.
type slowApply struct{ ReadModel }

func (r slowApply) Applied() int64 { return 0 }

func (r slowApply) WaitFor(ctx context.Context, pos int64) error {
	if err := r.ReadModel.WaitFor(ctx, pos); err != nil {
		return err
	}
	select {
	case <-time.After(300 * time.Millisecond):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// A write committed when shutdown starts, whose event the pipeline (which
// outlives the drain) applies in a moment, gets its answer: it was
// answered 503 shutting-down at once, telling the client "not done"
// without the "durable at position N" of a not-caught-up 503.
func TestCommittedWriteAtShutdown(t *testing.T) {
	e := MustEnv(t, nil)
	cfg := DefaultConfig()
	cfg.Kinds = domain.MustKindSet("like", "collect")
	srv := e.sideServer(cfg, slowApply{e.set}, nil, nil)
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Handler().ServeHTTP(rec, newRequest("PUT", "/v1/targets/article/sd-1/like/u1", nil))
	}()
	waitCommitted(t, e, 1) // the write now waits for its apply
	srv.closing.Store(true)
	srv.stopOnce.Do(func() { close(srv.stop) })
	<-done
	head, _ := e.store.LastPosition(context.Background())
	if head != 1 || (rec.Code != 200 && !strings.Contains(rec.Body.String(), "durable")) {
		t.Errorf("a committed write (log head %d) answered %d %s: want its 200 (the pipeline outlives the drain), or a 503 saying it is durable", head, rec.Code, rec.Body)
	}
}

// waitCommitted waits until the log head of e's store reaches pos: a
// sleep was not enough under load, and shutdown then refused the write
// before it was committed.
func waitCommitted(t *testing.T, e *testEnv, pos int64) {
	t.Helper()
	for {
		woken := e.store.Committed()
		head, err := e.store.LastPosition(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if head >= pos {
			return
		}
		select {
		case <-woken:
		case <-time.After(30 * time.Second):
			t.Fatalf("log head %d after 30 s, want %d", head, pos)
		}
	}
}

// TestLargestFeedPageIsServed: the largest feed page docs/api.md allows
// (200 targets of the longest type and id, and the longest viewer, every
// '@' percent-encoded as a browser's URLSearchParams sends it, with a
// bearer token's worth of headers) is answered, not refused by the
// server's header limit with a plain-text 431.
func TestLargestFeedPageIsServed(t *testing.T) {
	e := MustEnv(t, nil)
	_, base, _ := serveOnListener(t, e, e.srv.cfg)
	q := url.Values{"viewer": {strings.Repeat("@", 128)}}
	for i := range projections.MaxTargets {
		q.Add("t", strings.Repeat("a", 32)+"/"+fmt.Sprintf("%03d", i)+strings.Repeat("@", 125))
	}
	req, err := http.NewRequestWithContext(t.Context(), "GET", base+"/v1/targets?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.Repeat("x", 8<<10))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("a feed page of %d bytes of query: %s", len(q.Encode()), res.Status)
	}
}

// TestOptionsAsteriskIsAProblem: "OPTIONS *" reaches the API's pipeline
// like any request (net/http answered it itself, 200 with no body and
// none of the headers every answer carries: Ledger-Log, nosniff) and gets
// the 400 problem of a path that is not a clean absolute one.
func TestOptionsAsteriskIsAProblem(t *testing.T) {
	e := MustEnv(t, nil)
	_, base, _ := serveOnListener(t, e, e.srv.cfg)
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "OPTIONS * HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 || res.Header.Get("Content-Type") != "application/problem+json" ||
		res.Header.Get("Ledger-Log") == "" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("OPTIONS *: %s %v", res.Status, res.Header)
	}
}
