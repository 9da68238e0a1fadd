package httpapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/storetest/loggen"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/testlog"
	"github.com/interactionledger/ledger/projections"
)

// putMany likes n distinct targets (article/t-0 .. t-(n-1)) as user u, a
// few requests at a time.
func (e *testEnv) putMany(n int, u string) {
	e.t.Helper()
	e.putEach(n, func(i int) string { return fmt.Sprintf("/v1/targets/article/t-%d/like/%s", i, u) })
}

// likeBy likes target (type/id) as users u0 .. u(n-1), a few requests
// at a time.
func (e *testEnv) likeBy(target string, n int) {
	e.t.Helper()
	e.putEach(n, func(i int) string { return fmt.Sprintf("/v1/targets/%s/like/u%d", target, i) })
}

// putEach sends PUT path(i) for i in 0..n-1, eight at a time, each
// expected to answer 200.
func (e *testEnv) putEach(n int, path func(int) string) {
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range jobs {
				if res, b := e.do("PUT", path(i), ""); res.StatusCode != 200 {
					e.t.Errorf("PUT %s: %d %s", path(i), res.StatusCode, b)
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
	logs := &testlog.Buffer{}
	cfg := DefaultConfig()
	cfg.Kinds = domain.MustKindSet("like", "collect")
	srv := e.sideServer(cfg, failingRead{e.set}, nil, newTestLogger(logs))
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
	srv.Handler().ServeHTTP(rec, newRequest("GET", "/metrics", nil))
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
	if retry, err := strconv.Atoi(open["retry"]); err != nil || retry < 2000 || retry >= 4000 || open["id"] != "2" {
		t.Fatalf("opening frame %v, want retry 2000 to 3999 and id 2 (the head)", open)
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

// TestStreamRetrySpread: every stream asked its EventSource to reconnect
// after exactly 2 s, so when a node restarted (ending every stream at
// once) all of its browsers came back in the same moment. Each stream now
// draws its own time between 2 and 4 s.
func TestStreamRetrySpread(t *testing.T) {
	e := MustEnv(t, nil)
	seen := map[string]bool{}
	for range 8 {
		retry := readFrame(t, e.openStream(t, ""))["retry"]
		if n, err := strconv.Atoi(retry); err != nil || n < 2000 || n >= 4000 {
			t.Fatalf("retry %q, want 2000 to 3999", retry)
		}
		seen[retry] = true
	}
	if len(seen) < 2 {
		t.Fatalf("8 streams all asked for retry %v, want them spread", seen)
	}
}

// laggingRead is a read model that has applied only up to a position (a
// node of a cluster behind the shared log).
type laggingRead struct {
	ReadModel
	applied int64
}

func (l laggingRead) Applied() int64 { return l.applied }

// TestStreamReplayStopsAtApplied: a node replays only the stored events it
// has applied, whose counts it has; the rest come live once applied, with
// their exact counts (they were replayed with the counts of before them).
func TestStreamReplayStopsAtApplied(t *testing.T) {
	e := MustEnv(t, nil)
	for _, u := range []string{"u1", "u2", "u3", "u4"} {
		e.expect(200, "PUT", "/v1/targets/article/a-1/like/"+u, "")
	}
	cfg := DefaultConfig()
	cfg.Kinds = domain.MustKindSet("like", "collect")
	cfg.Heartbeat = 10 * time.Millisecond
	srv, err := New(cfg, Deps{Ledger: e.srv.deps.Ledger, Log: e.store, Read: laggingRead{e.set, 2}, Writable: e.srv.deps.Writable}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	res, err := http.DefaultClient.Do(mustRequest(t, hs.URL+"/v1/events/stream?after=0"))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	rd := bufio.NewReader(res.Body)
	for _, want := range []string{"1", "2"} {
		if ev := readSSE(t, rd); ev.id != want || ev.data.Counts["like"] < mustAtoi(t, want) {
			t.Fatalf("replayed %s with counts %v, want event %s with its counts or later ones", ev.id, ev.data.Counts, want)
		}
	}
	if beat := readFrame(t, rd); beat["id"] != "2" {
		t.Fatalf("after the applied events: frame %v, want a heartbeat at 2 (events 3 and 4 are not applied here)", beat)
	}
	stored, err := domain.AppendEvents(nil, e.store.ReadEvents(t.Context(), domain.EventFilter{After: 2, Limit: 1}))
	if err != nil {
		t.Fatal(err)
	}
	srv.Publish(stored[0], map[string]int64{"like": 3, "collect": 0})
	if ev := readSSE(t, rd); ev.id != "3" || ev.data.Counts["like"] != 3 {
		t.Fatalf("live after the replay: event %s counts %v, want 3 with like 3", ev.id, ev.data.Counts)
	}
}

func mustAtoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// stalledWriter is a connection whose client stopped reading: every write
// blocks until the write deadline passes. With takes set, the client reads
// slowly: a write ends after takes unless the deadline passes first.
type stalledWriter struct {
	header   http.Header
	blocked  chan struct{} // closed when a write first blocks
	once     sync.Once
	takes    time.Duration
	cut      atomic.Int64 // writes the deadline ended
	mu       sync.Mutex
	deadline time.Time
	moved    chan struct{} // closed and replaced when the deadline moves
}

func newStalledWriter() *stalledWriter {
	return &stalledWriter{header: http.Header{}, blocked: make(chan struct{}), moved: make(chan struct{})}
}

func (w *stalledWriter) Header() http.Header { return w.header }
func (w *stalledWriter) WriteHeader(int)     {}
func (w *stalledWriter) Flush()              {}

func (w *stalledWriter) SetReadDeadline(time.Time) error { return nil }

func (w *stalledWriter) SetWriteDeadline(d time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.deadline = d
	close(w.moved)
	w.moved = make(chan struct{})
	return nil
}

func (w *stalledWriter) Write(b []byte) (int, error) {
	w.once.Do(func() { close(w.blocked) })
	var read <-chan time.Time
	if w.takes > 0 {
		read = time.After(w.takes)
	}
	for {
		w.mu.Lock()
		d, moved := w.deadline, w.moved
		w.mu.Unlock()
		if !d.IsZero() && !time.Now().Before(d) {
			w.cut.Add(1)
			return 0, os.ErrDeadlineExceeded
		}
		var passed <-chan time.Time
		if !d.IsZero() {
			passed = time.After(time.Until(d))
		}
		select {
		case <-moved:
		case <-passed:
		case <-read:
			return len(b), nil
		}
	}
}

// TestStreamEndsAtShutdownWhileBlocked: shutdown ends a stream whose
// client stopped reading during the replay at once, not after the write
// timeout (which held the drain until it passed).
func TestStreamEndsAtShutdownWhileBlocked(t *testing.T) {
	e := MustEnv(t, nil)
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	cfg := DefaultConfig()
	cfg.Kinds = domain.MustKindSet("like", "collect")
	cfg.WriteTimeout = time.Hour
	srv := e.sideServer(cfg, nil, nil, nil)
	w := newStalledWriter()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Handler().ServeHTTP(w, newRequestWithContext(t.Context(), "GET", "/v1/events/stream?after=0", nil))
	}()
	<-w.blocked
	srv.stopOnce.Do(func() { close(srv.stop) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream is still blocked on its client 10 s after shutdown began (the write timeout is an hour)")
	}
}

// TestStreamWriteInProgressAtShutdown: shutdown lets a write to a client
// that reads (slowly) finish, rather than cutting the frame and with it
// the stream's clean end. It cut every write in progress at once, which
// under load cut a busy live stream now and then.
func TestStreamWriteInProgressAtShutdown(t *testing.T) {
	e := MustEnv(t, nil)
	cfg := DefaultConfig()
	cfg.Kinds = domain.MustKindSet("like", "collect")
	srv := e.sideServer(cfg, nil, nil, nil)
	w := newStalledWriter()
	w.takes = 200 * time.Millisecond
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Handler().ServeHTTP(w, newRequestWithContext(t.Context(), "GET", "/v1/events/stream", nil))
	}()
	<-w.blocked
	srv.stopOnce.Do(func() { close(srv.stop) })
	<-done
	if n := w.cut.Load(); n != 0 {
		t.Errorf("shutdown cut %d write(s) in progress to a client that was reading", n)
	}
}

// The stream filters by target only: the history's filters are refused
// rather than ignored, and so is a malformed target, one given twice or
// more than maxStreamTargets, each named; an empty Last-Event-ID is no
// resume point.
func TestStreamParams(t *testing.T) {
	e := MustEnv(t, nil)
	for _, q := range []string{"kind=like", "user=u1", "target_type=article", "target_id=a-1", "since=2026-01-01T00:00:00Z", "limit=5"} {
		b := e.expect(400, "GET", "/v1/events/stream?after=0&"+q, "", "Accept", "text/event-stream")
		if !strings.Contains(string(b), "filters by target only, as t=type/id") {
			t.Errorf("%s: %s", q, b)
		}
	}
	many := strings.Repeat("t=article/x&", maxStreamTargets) + "t=article/y"
	for _, c := range []struct{ query, want string }{
		{"t=article", `\"article\" must be type/id`},
		{"t=", `\"\" must be type/id`},
		{"t=Article/a-1", `\"Article\" must match`},
		{"t=article/a%201", `\"a 1\" must match`},
		{"t=article/a-1&t=article/a-2&t=article/a-1", `\"article/a-1\" is given twice`},
		{many, "51 targets given; a stream takes at most 50"},
	} {
		b := e.expect(400, "GET", "/v1/events/stream?"+c.query, "", "Accept", "text/event-stream")
		p := mustDecode[Problem](t, b)
		if len(p.InvalidParams) != 1 || p.InvalidParams[0].Name != "t" || !strings.Contains(string(b), c.want) {
			t.Errorf("%.60s: %s, want t named with %s", c.query, b, c.want)
		}
	}
	e.expect(200, "HEAD", "/v1/events/stream", "", "Accept", "text/event-stream", "Last-Event-ID", "")
	e.expect(200, "HEAD", "/v1/events/stream?t=article/a-1&t=comment/c-1", "", "Accept", "text/event-stream")
}

// filterReads is a log that records the filters of its reads.
type filterReads struct {
	Log
	mu      sync.Mutex
	filters []domain.EventFilter
}

func (f *filterReads) ReadEvents(ctx context.Context, ef domain.EventFilter) iter.Seq2[domain.Event, error] {
	f.mu.Lock()
	f.filters = append(f.filters, ef)
	f.mu.Unlock()
	return f.Log.ReadEvents(ctx, ef)
}

// nextResume reads frames up to the next one without an event and returns
// its id; an event frame before it fails the test.
func nextResume(t *testing.T, rd *bufio.Reader) string {
	t.Helper()
	f := readFrameWithin(t, rd, 10*time.Second, "a resume point")
	if f["event"] != "" || f["id"] == "" {
		t.Fatalf("frame %v, want a resume point without an event", f)
	}
	return f["id"]
}

// fillFiltered likes article/a-1 150 times, article/a-2 90 times and
// comment/c-3 5 times, all at once, then 20 other targets once each: 265
// events, the log ending with other targets' events.
func (e *testEnv) fillFiltered() {
	var wg sync.WaitGroup
	for target, n := range map[string]int{"article/a-1": 150, "article/a-2": 90, "comment/c-3": 5} {
		wg.Go(func() { e.likeBy(target, n) })
	}
	wg.Wait()
	e.putMany(20, "u1")
}

// checkFilteredReplay reads the replay of a stream filtered to article/a-1
// and comment/c-3 over fillFiltered's log: their events only, in order,
// each once, with their counts, then a resume point at head.
func checkFilteredReplay(t *testing.T, rd *bufio.Reader, head int64) {
	t.Helper()
	want := map[string]int64{"a-1": 150, "c-3": 5}
	seen := map[string]int64{}
	last := int64(0)
	for range 155 {
		ev := readSSE(t, rd)
		pos := mustAtoi(t, ev.id)
		id := ev.data.Target.ID
		if pos <= last || want[id] == 0 || ev.data.Counts["like"] != want[id] {
			t.Fatalf("event %d of %s with counts %v after %d: want a-1 or c-3, in order, with their counts", pos, id, ev.data.Counts, last)
		}
		last = pos
		seen[id]++
	}
	if seen["a-1"] != 150 || seen["c-3"] != 5 {
		t.Fatalf("replayed %v, want a-1 150 times and c-3 5 times", seen)
	}
	if id := nextResume(t, rd); mustAtoi(t, id) != head {
		t.Fatalf("resume point after the replay %s, want the log's head %d", id, head)
	}
}

// TestStreamFilteredReplay: a stream filtered to targets replays their
// events only, in order, each once, with their counts, across many
// batches of the log's filtered reads (never a read of the whole log),
// then a resume point at the log's head though the last events were of
// other targets.
func TestStreamFilteredReplay(t *testing.T) {
	e := MustEnv(t, func(c *Config) { c.Heartbeat = 10 * time.Millisecond })
	e.fillFiltered()
	log := &filterReads{Log: e.store}
	cfg := e.srv.cfg
	srv := e.sideServer(cfg, nil, log, nil)
	q := e.serving(srv)
	rd := q.openStream(t, "?after=0&t=article/a-1&t=comment/c-3")
	checkFilteredReplay(t, rd, 265)
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, f := range log.filters {
		if f.TargetType == "" || f.TargetID == "" || f.Limit != backfillBatch {
			t.Errorf("a filtered replay read the log with %+v, want a target's read of a batch", f)
		}
	}
	if n := len(log.filters); n < 2 || n > 150/backfillBatch+2 {
		t.Errorf("%d reads, want a-1's batches and one read of c-3", n)
	}
}

// TestStreamFilteredReplayReads: a replay filtered to 50 targets, one of
// which has 1,000 events and the others one each, reads each target again
// only once the batches sent what was read of it: a target with nothing
// more is not asked again. Each batch read all 50 targets from its start,
// 17 batches of 50 reads.
func TestStreamFilteredReplayReads(t *testing.T) {
	e := MustEnv(t, func(c *Config) { c.Heartbeat = 10 * time.Millisecond })
	single := func(i int) string { return fmt.Sprintf("/v1/targets/article/s-%d/like/u1", i) }
	e.putEach(25, single)                                       // 1 .. 25
	e.likeBy("article/big", 1000)                               // 26 .. 1025
	e.putEach(24, func(i int) string { return single(25 + i) }) // 1026 .. 1049
	log := &filterReads{Log: e.store}
	q := e.serving(e.sideServer(e.srv.cfg, nil, log, nil))
	query := "?after=0&t=article/big"
	for i := range 49 {
		query += fmt.Sprintf("&t=article/s-%d", i)
	}
	rd := q.openStream(t, query)
	for want := int64(1); want <= 1049; want++ {
		if ev := readSSE(t, rd); mustAtoi(t, ev.id) != want {
			t.Fatalf("replayed event %s, want %d: every event of the targets, in order, once", ev.id, want)
		}
	}
	if id := nextResume(t, rd); id != "1049" {
		t.Fatalf("resume point after the replay %s, want the log's head 1049", id)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if most := 1000/backfillBatch + 1 + 50 + 2; len(log.filters) > most {
		t.Errorf("the replay read the log %d times, want at most %d: big's batches and one read of each other target", len(log.filters), most)
	}
}

// TestStreamFilteredLive: a live stream filtered to a target gets that
// target's events with their counts, and its heartbeats carry the log's
// position though the latest events were of other targets.
func TestStreamFilteredLive(t *testing.T) {
	e := MustEnv(t, func(c *Config) { c.Heartbeat = 10 * time.Millisecond })
	rd := e.openStream(t, "?t=article/a-2")
	if open := readFrame(t, rd); open["id"] != "0" {
		t.Fatalf("opening frame %v, want id 0", open)
	}
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	e.expect(200, "PUT", "/v1/targets/article/a-2/like/u1", "")
	e.expect(200, "PUT", "/v1/targets/article/a-2/collect/u2", "")
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u2", "")
	for _, want := range []struct {
		id   string
		kind string
	}{{"2", "like"}, {"3", "collect"}} {
		ev := readSSE(t, rd)
		if ev.id != want.id || ev.data.Target.ID != "a-2" || ev.data.Kind != want.kind {
			t.Fatalf("live event %s %+v, want %s of a-2", ev.id, ev.data, want.id)
		}
	}
	for i := 0; ; i++ {
		id := nextResume(t, rd)
		if id == "4" {
			break
		}
		if id != "3" || i > 1000 {
			t.Fatalf("heartbeat at %s, want 3 until the head, 4, is published", id)
		}
	}
}

// TestStreamFilteredResume: a filtered client resumes from the last
// heartbeat's id without a gap or a duplicate, across long stretches of
// other targets' events, more than its buffer holds.
func TestStreamFilteredResume(t *testing.T) {
	e := MustEnv(t, func(c *Config) { c.Heartbeat = 10 * time.Millisecond })
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	var resume string
	t.Run("live", func(t *testing.T) {
		rd := e.openStream(t, "?t=article/a-1")
		if open := readFrame(t, rd); open["id"] != "1" {
			t.Fatalf("opening frame %v, want id 1", open)
		}
		e.putMany(300, "u2") // 2 .. 301, more than a client's buffer
		for resume != "301" {
			if resume = nextResume(t, rd); mustAtoi(t, resume) > 301 {
				t.Fatalf("heartbeat at %s, beyond the head 301", resume)
			}
		}
	})
	// The client is away while the log moves on.
	e.putMany(100, "u3")                                        // 302 .. 401
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u2", "") // 402
	e.putMany(100, "u4")                                        // 403 .. 502
	rd := e.openStream(t, "?t=article/a-1", "Last-Event-ID", resume)
	if open := readFrame(t, rd); open["id"] != "301" {
		t.Fatalf("opening frame %v, want id 301", open)
	}
	if ev := readSSE(t, rd); ev.id != "402" || ev.data.Counts["like"] != 2 {
		t.Fatalf("after the resume: event %s counts %v, want 402 with like 2", ev.id, ev.data.Counts)
	}
	if id := nextResume(t, rd); id != "502" {
		t.Fatalf("resume point after the replay %s, want 502", id)
	}
	again := e.openStream(t, "?t=article/a-1", "Last-Event-ID", "402")
	readFrame(t, again)
	if id := nextResume(t, again); id != "502" {
		t.Fatalf("resumed at 402: frame at %s, want no event (402 was sent) and the head 502", id)
	}
}

// openReads is a log that counts the reads in progress.
type openReads struct {
	Log
	open atomic.Int64
}

func (o *openReads) ReadEvents(ctx context.Context, f domain.EventFilter) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		o.open.Add(1)
		defer o.open.Add(-1)
		for e, err := range o.Log.ReadEvents(ctx, f) {
			if !yield(e, err) {
				return
			}
		}
	}
}

// TestExportHoldsNoReadWhileBlocked: an NDJSON export blocked on a client
// that stopped reading holds no read of the log. It held one for the whole
// export, and four slow exports took every read connection of a SQLite log,
// which writes need too.
func TestExportHoldsNoReadWhileBlocked(t *testing.T) {
	e := MustEnv(t, nil)
	if _, err := loggen.Generate(t.Context(), e.store, loggen.Config{Events: 2500, Users: 30, Targets: 40, Workers: 4,
		Kinds: domain.MustKindSet("like", "collect"), Seed: 3}); err != nil {
		t.Fatal(err)
	}
	log := &openReads{Log: e.store}
	cfg := DefaultConfig()
	cfg.Kinds = domain.MustKindSet("like", "collect")
	cfg.WriteTimeout = time.Hour
	srv := e.sideServer(cfg, nil, log, nil)
	w := newStalledWriter()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { _ = recover() }() // the aborted export's http.ErrAbortHandler
		req := newRequestWithContext(t.Context(), "GET", "/v1/events?after=0", nil)
		req.Header.Set("Accept", "application/x-ndjson")
		srv.Handler().ServeHTTP(w, req)
	}()
	<-w.blocked
	if n := log.open.Load(); n != 0 {
		t.Errorf("%d reads of the log open while the export waits for its client", n)
	}
	_ = w.SetWriteDeadline(time.Now()) // the client goes away
	<-done
}

// brokenLog is a log whose reads fail from the second on (a database that
// went away during an export).
type brokenLog struct {
	Log
	calls atomic.Int64
}

func (b *brokenLog) ReadEvents(ctx context.Context, f domain.EventFilter) iter.Seq2[domain.Event, error] {
	if b.calls.Add(1) > 1 {
		return func(yield func(domain.Event, error) bool) {
			yield(domain.Event{}, fmt.Errorf("read: the connection was lost: %w", domain.ErrUnavailable))
		}
	}
	return b.Log.ReadEvents(ctx, f)
}

// exportOn runs an NDJSON export of srv into w and recovers the abort of a
// cut one.
func exportOn(t *testing.T, srv *Server, w http.ResponseWriter) {
	t.Helper()
	defer func() { _ = recover() }()
	req := newRequestWithContext(t.Context(), "GET", "/v1/events?after=0", nil)
	req.Header.Set("Accept", "application/x-ndjson")
	srv.Handler().ServeHTTP(w, req)
}

// An export cut after its first byte is recorded as what happened, not as
// the 200 it sent: a client that left is a 499 logged at debug level, a
// failure of the server is logged at error level, counted, and recorded
// with its status (503 for a store that went away).
func TestExportCutIsRecorded(t *testing.T) {
	e := MustEnv(t, nil)
	if _, err := loggen.Generate(t.Context(), e.store, loggen.Config{Events: exportPage + 100, Users: 30, Targets: 40, Workers: 4,
		Kinds: domain.MustKindSet("like", "collect"), Seed: 5}); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Kinds = domain.MustKindSet("like", "collect")
	logs := &testlog.Buffer{}
	broken := e.sideServer(cfg, nil, &brokenLog{Log: e.store}, newTestLogger(logs))
	exportOn(t, broken, httptest.NewRecorder())
	metrics := scrape(t, broken)
	if !strings.Contains(metrics, "ledger_history_export_failures_total 1") ||
		!strings.Contains(metrics, `ledger_http_requests_total{code="503",route="GET /v1/events"} 1`) {
		t.Errorf("a failed export: metrics\n%s", grepLines(metrics, "GET /v1/events"))
	}
	if !strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("a failed export is not logged at error level:\n%s", logs)
	}

	cfg.WriteTimeout, cfg.ConsistencyTimeout = 50*time.Millisecond, 20*time.Millisecond
	logs = &testlog.Buffer{}
	left := e.sideServer(cfg, nil, nil, slog.New(slog.NewTextHandler(logs, nil)))
	w := newStalledWriter()
	exportOn(t, left, w)
	metrics = scrape(t, left)
	if !strings.Contains(metrics, `ledger_http_requests_total{code="499",route="GET /v1/events"} 1`) ||
		!strings.Contains(metrics, "ledger_history_export_failures_total 0") {
		t.Errorf("an export whose client left: metrics\n%s", grepLines(metrics, "GET /v1/events"))
	}
	if strings.Contains(logs.String(), "level=WARN") || strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("a client that left is logged as a failure:\n%s", logs)
	}
}

// scrape returns srv's /metrics.
func scrape(t *testing.T, srv *Server) string {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, newRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// heldReads is a log whose reads wait until release is closed, counting
// those in progress and the most at once.
type heldReads struct {
	Log
	release   chan struct{}
	open, top atomic.Int64
}

func (h *heldReads) ReadEvents(ctx context.Context, f domain.EventFilter) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		n := h.open.Add(1)
		defer h.open.Add(-1)
		for t := h.top.Load(); n > t && !h.top.CompareAndSwap(t, n); t = h.top.Load() {
		}
		<-h.release
		for e, err := range h.Log.ReadEvents(ctx, f) {
			if !yield(e, err) {
				return
			}
		}
	}
}

// TestStreamReplaysBounded: many streams resuming from an old position at
// once (the reconnect storm after a restart) read the log at most
// replayReaders at a time. Each read all at once, every one holding a
// batch of events in memory: 3,000 clients resuming from position 0 took
// a node to 1.5 GB, and their reads queued ahead of the projections' for
// the log's read connections, so writes answered 503.
func TestStreamReplaysBounded(t *testing.T) {
	e := MustEnv(t, nil)
	e.putMany(20, "u1")
	log := &heldReads{Log: e.store, release: make(chan struct{})}
	cfg := DefaultConfig()
	cfg.Kinds = domain.MustKindSet("like", "collect")
	srv := e.sideServer(cfg, nil, log, nil)
	const streams = 3 * replayReaders
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	ws := make([]*recordingWriter, streams)
	for i := range ws {
		ws[i] = newRecordingWriter(20)
		wg.Go(func() {
			srv.Handler().ServeHTTP(ws[i], newRequestWithContext(ctx, "GET", "/v1/events/stream?after=0", nil))
		})
	}
	for log.open.Load()+srv.replays.waiting.Load() < streams {
		runtime.Gosched()
	}
	if top := log.top.Load(); top > replayReaders {
		t.Errorf("%d streams read the log at once, want at most %d", top, replayReaders)
	}
	close(log.release)
	for i, w := range ws {
		<-w.reached
		if got := w.positions(); len(got) != 20 || got[0] != 1 || got[19] != 20 {
			t.Errorf("stream %d got positions %v, want 1..20", i, got)
		}
	}
	cancel()
	wg.Wait()
}

// recordingWriter is a client that reads everything: it records the
// flushes and the events' positions, and closes reached once it has
// received position upTo.
type recordingWriter struct {
	header  http.Header
	upTo    int64
	reached chan struct{}
	mu      sync.Mutex
	flushes int
	buf     strings.Builder
	done    bool
}

func newRecordingWriter(upTo int64) *recordingWriter {
	return &recordingWriter{header: http.Header{}, upTo: upTo, reached: make(chan struct{})}
}

func (w *recordingWriter) Header() http.Header              { return w.header }
func (w *recordingWriter) WriteHeader(int)                  {}
func (w *recordingWriter) SetReadDeadline(time.Time) error  { return nil }
func (w *recordingWriter) SetWriteDeadline(time.Time) error { return nil }

func (w *recordingWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushes++
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	if !w.done && strings.Contains(w.buf.String(), "\nid: "+strconv.FormatInt(w.upTo, 10)+"\nevent:") {
		w.done = true
		close(w.reached)
	}
	return len(b), nil
}

// positions are the ids of the event frames written so far.
func (w *recordingWriter) positions() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []int64
	for _, f := range strings.Split(w.buf.String(), "\n\n") {
		if strings.Contains(f, "\nevent: ") {
			id, _, _ := strings.Cut(strings.TrimPrefix(f[strings.Index(f, "id: "):], "id: "), "\n")
			n, _ := strconv.ParseInt(id, 10, 64)
			out = append(out, n)
		}
	}
	return out
}

// flushCount is how many times the stream flushed.
func (w *recordingWriter) flushCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushes
}

// TestStreamLiveCoalesces: a live client that fell behind gets the events
// queued for it with one flush, in order, rather than one write and flush
// per event (with thousands of streams on two cores each flush is a
// system call, and the clients fell further behind).
func TestStreamLiveCoalesces(t *testing.T) {
	e := MustEnv(t, nil)
	e.putMany(10, "u1")
	events, err := domain.AppendEvents(nil, e.store.ReadEvents(t.Context(), domain.EventFilter{}))
	if err != nil || len(events) != 10 {
		t.Fatalf("read %d events: %v", len(events), err)
	}
	// A hub of its own: the applier may still announce the last write to
	// the server's.
	h := newHub(e.srv.cfg.StreamBuffer, e.srv.metrics)
	sub := h.subscribe(nil)
	for _, ev := range events {
		h.publish(ev, map[string]int64{"like": 1})
	}
	w := newRecordingWriter(10)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.srv.live(ctx, newStreamer(w, time.Hour), sub, 0)
	}()
	<-w.reached
	cancel()
	<-done
	if got := w.positions(); len(got) != 10 || got[0] != 1 || got[9] != 10 {
		t.Errorf("positions %v, want 1..10", got)
	}
	if n := w.flushCount(); n != 1 {
		t.Errorf("%d flushes for 10 queued events, want 1", n)
	}
}

// readFrameWithin is readFrame that fails the test when no frame comes
// within d (a stream that sends nothing would otherwise hang the test).
func readFrameWithin(t *testing.T, rd *bufio.Reader, d time.Duration, what string) map[string]string {
	t.Helper()
	got := make(chan map[string]string, 1)
	go func() {
		f := map[string]string{}
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				got <- map[string]string{"error": err.Error()}
				return
			}
			line = strings.TrimRight(line, "\n")
			if line == "" {
				if len(f) > 0 {
					got <- f
					return
				}
				continue
			}
			name, value, _ := strings.Cut(line, ":")
			if name == "" {
				name = ":"
			}
			f[name] = strings.TrimPrefix(value, " ")
		}
	}()
	select {
	case f := <-got:
		return f
	case <-time.After(d):
		t.Fatalf("no frame within %v: %s", d, what)
		return nil
	}
}

// TestStreamHeartbeatWhileWaiting: a stream waiting for its turn to read
// its replay (the gate admits replayReaders at once) got no heartbeat, so
// a proxy's idle timeout could cut it during a reconnect storm. It now
// gets one every heartbeat, with its resume point.
func TestStreamHeartbeatWhileWaiting(t *testing.T) {
	e := MustEnv(t, func(c *Config) { c.Heartbeat = 10 * time.Millisecond })
	e.putMany(3, "u1")
	for range replayReaders {
		e.srv.replays.slots <- struct{}{} // other streams hold every turn
	}
	rd := e.openStream(t, "?after=1")
	if open := readFrame(t, rd); open["id"] != "1" {
		t.Fatalf("opening frame %v, want id 1", open)
	}
	for range 2 {
		beat := readFrameWithin(t, rd, 5*time.Second, "a heartbeat while the stream waits for its replay turn")
		if beat["id"] != "1" || beat[":"] != "heartbeat 1" {
			t.Fatalf("frame while waiting %v, want a heartbeat with id 1", beat)
		}
	}
	if n := e.srv.replays.waiting.Load(); n != 1 {
		t.Fatalf("%d streams waiting for their turn, want 1", n)
	}
	for range replayReaders {
		<-e.srv.replays.slots
	}
	for _, want := range []string{"2", "3"} {
		if ev := readSSE(t, rd); ev.id != want {
			t.Fatalf("after its turn: event %s, want %s", ev.id, want)
		}
	}
}
