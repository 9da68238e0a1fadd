package httpapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

// putMany likes n distinct targets (article/t-0 .. t-(n-1)) as user u, a
// few requests at a time.
func (e *testEnv) putMany(n int, u string) {
	e.t.Helper()
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range jobs {
				res, b := e.do("PUT", fmt.Sprintf("/v1/targets/article/t-%d/like/%s", i, u), "")
				if res.StatusCode != 200 {
					e.t.Errorf("put %d: %d %s", i, res.StatusCode, b)
				}
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
}

// openStream opens the event stream with the given headers and returns a
// reader of its body; the response is closed at the end of the test.
func (e *testEnv) openStream(t *testing.T, query string, header ...string) *bufio.Reader {
	t.Helper()
	req := mustRequest(t, e.http.URL+"/v1/events/stream"+query)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != 200 {
		t.Fatalf("stream: status %d", res.StatusCode)
	}
	return bufio.NewReader(res.Body)
}

// TestStreamBackfillManyTargets replays a batch that touches more targets
// than one feed-page lookup may ask for.
func TestStreamBackfillManyTargets(t *testing.T) {
	const n = 260
	e := MustEnv(t, nil)
	e.putMany(n, "u1")
	rd := e.openStream(t, "?after=0")
	seen := map[string]bool{}
	for range n {
		ev := readSSE(t, rd)
		if ev.data.Counts["like"] != 1 || ev.data.Target.Type != "article" {
			t.Fatalf("event %s: %+v", ev.id, ev.data)
		}
		seen[ev.data.Target.ID] = true
	}
	if len(seen) != n {
		t.Fatalf("replayed %d distinct targets, want %d", len(seen), n)
	}
	if strings.Contains(e.logs.String(), "level=ERROR") {
		t.Fatalf("errors logged:\n%s", e.logs.String())
	}
}

// failingRead is a read model whose batch lookups fail.
type failingRead struct{ ReadModel }

func (failingRead) Targets(context.Context, []domain.Target, *domain.UserID) ([]projections.TargetView, error) {
	return nil, errors.New("views file unreadable")
}

// TestStreamFailureIsCounted: an internal failure of a stream is logged at
// error level and counted in the metrics.
func TestStreamFailureIsCounted(t *testing.T) {
	e := MustEnv(t, nil)
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	logs := &syncBuffer{}
	cfg := DefaultConfig()
	cfg.Kinds = domain.MustKindSet("like", "collect")
	srv, err := New(cfg, Deps{
		Ledger: e.srv.deps.Ledger, Log: e.store, Read: failingRead{e.set}, Writable: e.srv.deps.Writable,
	}, newTestLogger(logs))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	res, err := http.DefaultClient.Do(mustRequest(t, hs.URL+"/v1/events/stream?after=0"))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(res.Body) // the stream ends when the backfill fails
	res.Body.Close()
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "views file unreadable") {
		t.Fatalf("failure not logged at error level:\n%s", logs.String())
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), "ledger_sse_stream_failures_total 1") {
		t.Fatalf("failure not counted:\n%s", grepLines(rec.Body.String(), "ledger_sse"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// readFrame reads one SSE frame (up to a blank line) and returns its
// fields; comment lines come back under ":".
func readFrame(t *testing.T, rd *bufio.Reader) map[string]string {
	t.Helper()
	f := map[string]string{}
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("read stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		if line == "" {
			if len(f) > 0 {
				return f
			}
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		if name == "" {
			name = ":"
		}
		f[name] = strings.TrimPrefix(value, " ")
	}
}

// TestStreamLiveResumePoint: a live-only client gets a resume point on the
// opening frame and with every heartbeat, so events written while it
// reconnects are not lost.
func TestStreamLiveResumePoint(t *testing.T) {
	e := MustEnv(t, func(c *Config) { c.Heartbeat = 10 * time.Millisecond })
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u2", "")
	rd := e.openStream(t, "")
	open := readFrame(t, rd)
	if open["retry"] != "2000" || open["id"] != "2" {
		t.Fatalf("opening frame %v, want retry 2000 and id 2 (the head)", open)
	}
	if beat := readFrame(t, rd); beat["id"] != "2" || !strings.HasPrefix(beat[":"], "heartbeat") {
		t.Fatalf("heartbeat frame %v, want id 2", beat)
	}
	// The client drops here; writes land in the gap; it resumes from the id.
	e.expect(200, "PUT", "/v1/targets/article/a-2/like/u1", "")
	e.expect(200, "DELETE", "/v1/targets/article/a-1/like/u1", "")
	again := e.openStream(t, "", "Last-Event-ID", open["id"])
	for _, want := range []string{"3", "4"} {
		if ev := readSSE(t, again); ev.id != want {
			t.Fatalf("after reconnect: event %s, want %s", ev.id, want)
		}
	}
	e.expect(200, "PUT", "/v1/targets/article/a-3/like/u1", "")
	if ev := readSSE(t, again); ev.id != "5" {
		t.Fatalf("live after reconnect: event %s, want 5", ev.id)
	}
	if beat := readFrame(t, again); beat["id"] != "5" {
		t.Fatalf("heartbeat after event 5: %v", beat)
	}
}
