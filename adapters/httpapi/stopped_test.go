package httpapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/sqlite"
)

// movedBack is a log whose head reads as 0: the log restored from an
// empty copy under the running node.
type movedBack struct{ *sqlite.EventStore }

func (movedBack) LastPosition(context.Context) (int64, error) { return 0, nil }

// stopWays are the ways a node's read models stop until a restart.
var stopWays = []string{"log moved back", "views file replaced"}

// stop stops e's read models for good, the way named (one of stopWays),
// and waits until they say so. The read models must have applied an event.
func (e *testEnv) stop(way string) {
	e.t.Helper()
	switch way {
	case "log moved back":
		go e.set.WatchHead(e.t.Context(), movedBack{e.store}, time.Millisecond)
	case "views file replaced":
		for _, sfx := range []string{"", "-wal", "-shm"} {
			if err := os.Rename(e.views+sfx, e.views+".aside"+sfx); err != nil && !errors.Is(err, os.ErrNotExist) {
				e.t.Fatal(err)
			}
		}
	default:
		e.t.Fatalf("no way to stop a node named %q", way)
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.set.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if e.set.Err() == nil {
		e.t.Fatalf("%s: the read models did not stop", way)
	}
}

// forEachStop runs test in a subtest for each of stopWays, on a node that
// took one write (article/a-1 liked by u1) and then stopped that way.
func forEachStop(t *testing.T, test func(t *testing.T, e *testEnv, way string)) {
	for _, way := range stopWays {
		t.Run(way, func(t *testing.T) {
			e := MustEnv(t, nil)
			e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
			e.stop(way)
			test(t, e, way)
		})
	}
}

// TestStreamOnAStoppedNode: on a node whose read models stopped until a
// restart (the log moved back under it, its views file replaced), the
// event stream answered 200 and ended at once, or sent heartbeats and no
// event for ever; a browser's EventSource reconnected in a loop. It must
// answer the 503 its reads answer, before any 200, so that EventSource
// fails the connection and stops.
func TestStreamOnAStoppedNode(t *testing.T) {
	forEachStop(t, func(t *testing.T, e *testEnv, way string) {
		read := mustDecode[Problem](t, e.expect(503, "GET", "/v1/targets/article/a-1", ""))
		for _, query := range []string{"", "?after=0"} {
			req := mustRequest(t, e.http.URL+"/v1/events/stream"+query)
			req.Header.Set("Accept", "text/event-stream")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			// The body of a 200 is the stream, which may never end.
			if res.StatusCode != 503 || res.Header.Get("Content-Type") != "application/problem+json" || res.Header.Get("Retry-After") == "" {
				res.Body.Close()
				t.Fatalf("stream%s: %d %s, want a 503 problem", query, res.StatusCode, res.Header.Get("Content-Type"))
			}
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if p := mustDecode[Problem](t, b); p.Type != read.Type || p.Detail != read.Detail {
				t.Fatalf("stream%s: %+v, want what a read answers: %+v", query, p, read)
			}
		}
	})
}

// TestStreamEndsWhenTheNodeStops: a stream open when the node's read
// models stop until a restart ends cleanly (its client reconnects and is
// answered 503), rather than sending heartbeats and no event for ever.
func TestStreamEndsWhenTheNodeStops(t *testing.T) {
	for _, way := range stopWays {
		t.Run(way, func(t *testing.T) {
			e := MustEnv(t, func(c *Config) { c.Heartbeat = 10 * time.Millisecond })
			e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, "GET", e.http.URL+"/v1/events/stream?after=0", nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			rd := bufio.NewReader(res.Body)
			if ev := readSSE(t, rd); ev.id != "1" {
				t.Fatalf("first event %s, want 1", ev.id)
			}
			e.stop(way)
			if _, err := io.ReadAll(rd); err != nil {
				t.Fatalf("the stream after the node stopped: %v, want it ended cleanly", err)
			}
		})
	}
}

// TestWriteOnAStoppedNode: a write on a node whose read models stopped
// until a restart is durable, and its 503 said to read it with
// min_position, which answers 503 on that node until the restart. It
// must say instead that the node's read models are stopped until a
// restart, and why. Both ways the write meets the stop are tried: its
// event not applied, and the read of the counts after it refused. A read
// with min_position was told the read model goes on by itself.
func TestWriteOnAStoppedNode(t *testing.T) {
	forEachStop(t, func(t *testing.T, e *testEnv, way string) {
		ahead := e.sideServer(e.srv.cfg, laggingRead{e.set, 1 << 40}, nil, nil)
		for i, h := range []http.Handler{e.srv.Handler(), ahead.Handler()} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, newRequest("PUT", fmt.Sprintf("/v1/targets/article/a-2/like/u%d", i+2), nil))
			body := rec.Body.String()
			p := mustDecode[Problem](t, rec.Body.Bytes())
			if rec.Code != 503 || p.Type != "urn:ledger:problem:not-caught-up" || p.Position == 0 ||
				!strings.Contains(body, fmt.Sprintf("durable at position %d", p.Position)) ||
				!strings.Contains(body, "stopped until it is restarted") || strings.Contains(body, "min_position") {
				t.Fatalf("write %d on a stopped node: %d %s, want not-caught-up saying the node is stopped until a restart", i, rec.Code, body)
			}
			cause := map[string]string{"log moved back": "behind position 1", "views file replaced": "no longer names"}[way]
			if !strings.Contains(body, cause) {
				t.Fatalf("write %d on a stopped node: %s, want the cause (%q)", i, body, cause)
			}
		}
		// A read waiting for the write's position is not told that the
		// read model goes on by itself once the cause is fixed.
		body := string(e.expect(503, "GET", "/v1/targets/article/a-2?min_position=2", ""))
		if !strings.Contains(body, "stopped until this node is restarted") || strings.Contains(body, "by itself") {
			t.Fatalf("a read with min_position on a stopped node: %s, want it stopped until a restart", body)
		}
	})
}

// TestReadyzOnAStoppedNode: /readyz on a node whose read models stopped
// until a restart said "a projection failed: projection failed: …" (the
// words twice) and nothing of the restart; it names the stop and the
// cause once.
func TestReadyzOnAStoppedNode(t *testing.T) {
	forEachStop(t, func(t *testing.T, e *testEnv, way string) {
		body := string(e.expect(503, "GET", "/readyz", ""))
		if strings.Count(body, "failed") > 1 || !strings.Contains(body, "stopped until this node is restarted") {
			t.Fatalf("/readyz on a stopped node (%s): %s; want the stop named once", way, body)
		}
	})
}
