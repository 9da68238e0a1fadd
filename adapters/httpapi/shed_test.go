package httpapi

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/interactionledger/ledger/domain"
)

// heldLedger holds every Set until release is closed, counting them.
type heldLedger struct {
	Ledger
	sets    atomic.Int64
	entered chan struct{}
	release chan struct{}
}

func (h *heldLedger) Set(ctx context.Context, req domain.SetRequest) (domain.Outcome, error) {
	if h.sets.Add(1) == 1 {
		close(h.entered)
	}
	<-h.release
	return h.Ledger.Set(ctx, req)
}

// TestInFlightBounded: past Config.MaxInFlight a request is answered 503
// overloaded at once, with Retry-After, having done nothing (the ledger saw
// no second write), while the probes are still answered; once the request
// in flight is done, the refused write succeeds as it was.
func TestInFlightBounded(t *testing.T) {
	held := &heldLedger{entered: make(chan struct{}), release: make(chan struct{})}
	e := mustEnvDeps(t, func(c *Config) { c.MaxInFlight = 1 }, func(d *Deps) {
		held.Ledger = d.Ledger
		d.Ledger = held
	})
	first := make(chan int, 1)
	go func() {
		res, _ := e.do("PUT", "/v1/targets/article/a1/like/u1", "")
		first <- res.StatusCode
	}()
	<-held.entered
	res, b := e.do("PUT", "/v1/targets/article/a1/like/u2", "")
	if res.StatusCode != 503 || res.Header.Get("Retry-After") != "1" || !strings.Contains(string(b), "urn:ledger:problem:overloaded") {
		t.Fatalf("second write: %d Retry-After %q %s, want 503 overloaded with Retry-After 1", res.StatusCode, res.Header.Get("Retry-After"), b)
	}
	if n := held.sets.Load(); n != 1 {
		t.Errorf("the ledger saw %d writes, want 1: the refused one must not be done", n)
	}
	e.expect(200, "GET", "/healthz", "")
	metrics := string(e.expect(200, "GET", "/metrics", ""))
	if !strings.Contains(metrics, `ledger_http_overloaded_total{bound="in_flight"} 1`) {
		t.Errorf("metrics do not count the refusal:\n%s", grepLines(metrics, "ledger_http_overloaded_total"))
	}
	close(held.release)
	if code := <-first; code != 200 {
		t.Fatalf("first write: %d", code)
	}
	e.expect(200, "PUT", "/v1/targets/article/a1/like/u2", "")
}

// TestStreamsBounded: past the stream bound a live stream is answered 503
// overloaded with Retry-After, and writes are still served.
func TestStreamsBounded(t *testing.T) {
	e := MustEnv(t, func(c *Config) { c.MaxStreams = 1 })
	_, res := e.roundTrip(t, "GET", "/v1/events/stream", "")
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("first stream: %d", res.StatusCode)
	}
	res2, b := e.do("GET", "/v1/events/stream", "")
	if res2.StatusCode != 503 || res2.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "urn:ledger:problem:overloaded") {
		t.Fatalf("second stream: %d %s, want 503 overloaded with Retry-After", res2.StatusCode, b)
	}
	e.expect(200, "PUT", "/v1/targets/article/a1/like/u1", "")
	metrics := string(e.expect(200, "GET", "/metrics", ""))
	if !strings.Contains(metrics, `ledger_http_overloaded_total{bound="streams"} 1`) {
		t.Errorf("metrics do not count the refusal:\n%s", grepLines(metrics, "ledger_http_overloaded_total"))
	}
	res.Body.Close() // the first stream ends: its slot is given back once its handler returns
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, again := e.roundTrip(t, "GET", "/v1/events/stream", "")
		again.Body.Close()
		if again.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a stream after the first one ended: still %d after 10 s; its slot was never given back", again.StatusCode)
		}
	}
}

// TestConnectionBoundClosesIdle: at Config.MaxConnections the server
// closes its idle keep-alive connections, so that a new client is served
// rather than held in the listen backlog until their idle timeout (here
// ten minutes, beyond the test's wait).
func TestConnectionBoundClosesIdle(t *testing.T) {
	e := MustEnv(t, nil)
	cfg := e.srv.cfg
	cfg.MaxConnections, cfg.IdleTimeout = 2, 10*time.Minute
	_, base, _ := serveOnListener(t, e, cfg)
	for i := range 2 { // two clients, each left with an idle keep-alive connection
		c := &http.Client{Transport: &http.Transport{}}
		t.Cleanup(c.CloseIdleConnections)
		res, err := c.Get(base + "/healthz")
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, res.Body) // read to its end: the connection is kept
		res.Body.Close()
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/healthz", nil)
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("a third client was not served while two idle ones held the connections: %v", err)
	}
	res.Body.Close()
}
