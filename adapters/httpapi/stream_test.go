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

// The stream takes no filters: the history's are refused rather than
// ignored; an empty Last-Event-ID is no resume point.
func TestStreamParams(t *testing.T) {
	e := MustEnv(t, nil)
	for _, q := range []string{"kind=like", "user=u1", "target_type=article", "target_id=a-1", "since=2026-01-01T00:00:00Z", "limit=5"} {
		b := e.expect(400, "GET", "/v1/events/stream?after=0&"+q, "", "Accept", "text/event-stream")
		if !strings.Contains(string(b), "takes no filters") {
			t.Errorf("%s: %s", q, b)
		}
	}
	e.expect(200, "HEAD", "/v1/events/stream", "", "Accept", "text/event-stream", "Last-Event-ID", "")
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
	sub := h.subscribe()
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
