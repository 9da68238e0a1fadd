package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/interactionledger/ledger/projections"
)

// served is a `ledger serve` started in-process through run.
type served struct {
	base   string
	logs   *logWatch
	cancel context.CancelFunc
	done   chan error
}

// logWatch is the server's stderr: it keeps every line and reports the
// address of the JSON "listening" line, which is how a test learns the
// port the server bound for 127.0.0.1:0.
type logWatch struct {
	mu    sync.Mutex
	lines []string
	buf   []byte
	addr  chan string
	at    string // the message whose addr is reported; "" is "listening"
}

func (l *logWatch) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := strings.IndexByte(string(l.buf), '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(l.buf[:i])
		l.buf = l.buf[i+1:]
		l.lines = append(l.lines, line)
		var rec struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == cmp.Or(l.at, "listening") {
			l.addr <- rec.Addr
		}
	}
}

func (l *logWatch) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// startServe runs `ledger serve --listen 127.0.0.1:0 --db db extra...`
// with the given environment and waits for it to listen.
func startServe(t *testing.T, db string, environ map[string]string, extra ...string) *served {
	t.Helper()
	return startServeUntil(t, "listening", db, environ, extra...)
}

// startServeUntil is startServe returning once the server has logged the
// message at with its address: "starting" is as soon as it listens, while
// its views may still be opening.
func startServeUntil(t *testing.T, at, db string, environ map[string]string, extra ...string) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	s := &served{logs: &logWatch{addr: make(chan string, 1), at: at}, cancel: cancel, done: make(chan error, 1)}
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--db", db, "--log-format", "json"}, extra...)
	go func() { s.done <- run(ctx, args, func(k string) string { return environ[k] }, io.Discard, s.logs) }()
	select {
	case addr := <-s.logs.addr:
		s.base = "http://" + addr
	case err := <-s.done:
		cancel()
		t.Fatalf("serve exited: %v\n%s", err, s.logs)
	case <-time.After(2 * time.Minute):
		cancel()
		t.Fatalf("serve did not log %q within 2 minutes\n%s", at, s.logs)
	}
	t.Cleanup(func() {
		s.cancel()
		<-s.done
	})
	return s
}

// stop cancels the server's context (SIGINT in main) and requires a clean
// exit.
func (s *served) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	if err := <-s.done; err != nil {
		t.Fatalf("serve returned %v\n%s", err, s.logs)
	}
	s.done <- nil
}

// call sends a request; header is name, value pairs.
func (s *served) call(t testing.TB, method, path, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

// want checks the status (and, for errors, the problem form) and returns
// the body.
func (s *served) want(t testing.TB, status int, method, path, body string, header ...string) []byte {
	t.Helper()
	res, b := s.call(t, method, path, body, header...)
	if res.StatusCode != status {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, res.StatusCode, status, b)
	}
	if res.Header.Get("Ledger-Position") == "" {
		t.Errorf("%s %s: no Ledger-Position", method, path)
	}
	if status >= 400 {
		var p struct {
			Type, Title   string
			Status        int
			InvalidParams []struct{ Name, Reason string } `json:"invalid_params"`
		}
		if res.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(b, &p) != nil || p.Status != status || p.Type == "" {
			t.Fatalf("%s %s: not a problem: %s %s", method, path, res.Header.Get("Content-Type"), b)
		}
		if status == 400 && len(p.InvalidParams) == 0 {
			t.Fatalf("%s %s: 400 without invalid_params: %s", method, path, b)
		}
		if (status == 503 || status == 429) && res.Header.Get("Retry-After") == "" {
			t.Fatalf("%s %s: %d without Retry-After", method, path, status)
		}
	}
	return b
}

type targetBody struct {
	Counts   map[string]int64 `json:"counts"`
	Viewer   map[string]bool  `json:"viewer"`
	Position int64            `json:"position"`
}

type writeBody struct {
	Changed  bool            `json:"changed"`
	Active   bool            `json:"active"`
	Viewer   map[string]bool `json:"viewer"`
	Position int64           `json:"position"`
}

type eventBody struct {
	Position int64  `json:"position"`
	Type     string `json:"type"`
	Kind     string `json:"kind"`
	User     string `json:"user"`
}

func decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// TestServeRestart: a user likes and collects an article and cancels
// both; after a restart on the same file every read shows both off and
// both counts 0, and the history holds the four events in order.
func TestServeRestart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "data", "ledger.db")
	if err := os.Mkdir(filepath.Dir(db), 0o755); err != nil { // serve makes only the default ./data
		t.Fatal(err)
	}
	s := startServe(t, db, nil)
	for _, step := range []struct{ method, kind string }{{"PUT", "like"}, {"PUT", "collect"}, {"DELETE", "like"}, {"DELETE", "collect"}} {
		w := decode[writeBody](t, s.want(t, 200, step.method, "/v1/targets/article/a-1/"+step.kind+"/u42", ""))
		if !w.Changed || w.Active != (step.method == "PUT") {
			t.Fatalf("%s %s: %+v", step.method, step.kind, w)
		}
	}
	s.stop(t)

	s = startServe(t, db, nil)
	with := decode[targetBody](t, s.want(t, 200, "GET", "/v1/targets/article/a-1?viewer=u42", ""))
	if with.Counts["like"] != 0 || with.Counts["collect"] != 0 || with.Viewer["like"] || with.Viewer["collect"] || len(with.Viewer) != 2 || with.Position != 4 {
		t.Fatalf("with viewer: %+v", with)
	}
	without := decode[targetBody](t, s.want(t, 200, "GET", "/v1/targets/article/a-1", ""))
	if without.Counts["like"] != 0 || without.Counts["collect"] != 0 || without.Viewer != nil {
		t.Fatalf("without viewer: %+v", without)
	}
	hist := decode[struct {
		Items     []eventBody `json:"items"`
		NextAfter int64       `json:"next_after"`
	}](t, s.want(t, 200, "GET", "/v1/events", ""))
	want := []eventBody{
		{1, "interaction.added", "like", "u42"}, {2, "interaction.added", "collect", "u42"},
		{3, "interaction.cancelled", "like", "u42"}, {4, "interaction.cancelled", "collect", "u42"},
	}
	if fmt.Sprint(hist.Items) != fmt.Sprint(want) || hist.NextAfter != 4 {
		t.Fatalf("history %+v, want %+v", hist.Items, want)
	}
	s.stop(t)
}

// TestServeReadYourWrites: under 50 concurrent writers, a read with the
// write's position as min_position always shows the write.
func TestServeReadYourWrites(t *testing.T) {
	s := startServe(t, filepath.Join(t.TempDir(), "ledger.db"), nil)
	const writers, rounds = 50, 6
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- writeThenRead(t, s, fmt.Sprintf("u%d", w), fmt.Sprintf("hot-%d", w%3), rounds)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func writeThenRead(t *testing.T, s *served, user, target string, rounds int) error {
	for i := range rounds {
		method := map[bool]string{true: "PUT", false: "DELETE"}[i%2 == 0]
		res, b := s.call(t, method, "/v1/targets/article/"+target+"/like/"+user, "")
		if res.StatusCode != 200 {
			return fmt.Errorf("%s %s: %d %s", method, user, res.StatusCode, b)
		}
		w := decode[writeBody](t, b)
		path := fmt.Sprintf("/v1/targets/article/%s?viewer=%s&min_position=%d", target, user, w.Position)
		res, b = s.call(t, "GET", path, "")
		if res.StatusCode != 200 {
			return fmt.Errorf("GET %s: %d %s", path, res.StatusCode, b)
		}
		v := decode[targetBody](t, b)
		if v.Viewer["like"] != (method == "PUT") || v.Position < w.Position {
			return fmt.Errorf("%s by %s at %d, then read %+v", method, user, w.Position, v)
		}
		if method == "PUT" && v.Counts["like"] < 1 {
			return fmt.Errorf("like by %s at %d, then count %d", user, w.Position, v.Counts["like"])
		}
	}
	return nil
}

// TestServeEndpoints walks every endpoint and every status of docs/api.md's
// table through the real server.
func TestServeEndpoints(t *testing.T) {
	s := startServe(t, filepath.Join(t.TempDir(), "ledger.db"), map[string]string{"LEDGER_KINDS": "like,collect,follow"},
		"--consistency-timeout", "50ms", "--write-rate", "1000")
	w := decode[writeBody](t, s.want(t, 200, "PUT", "/v1/targets/article/a-1/like/u1", `{"metadata":{"source":"web"}}`, "Content-Type", "application/json"))
	s.want(t, 200, "PUT", "/v1/targets/article/a-1/follow/u2", "")
	s.want(t, 200, "DELETE", "/v1/targets/article/a-1/follow/u2", "", "If-Match", `"v1"`)
	res, _ := s.call(t, "GET", "/v1/targets/article/a-1?viewer=u1", "")
	if res.StatusCode != 200 || res.Header.Get("ETag") == "" || res.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("target: %d %v", res.StatusCode, res.Header)
	}
	s.want(t, 304, "GET", "/v1/targets/article/a-1?viewer=u1", "", "If-None-Match", res.Header.Get("ETag"))
	s.want(t, 200, "GET", "/v1/targets?t=article/a-1&t=video/v-9&viewer=u1", "")
	s.want(t, 200, "GET", "/v1/targets/article/a-1/like?limit=1", "")
	s.want(t, 200, "GET", "/v1/users/u1/like?type=article", "")
	s.want(t, 200, "GET", fmt.Sprintf("/v1/events?after=0&limit=10&user=u1&kind=like&target_type=article&target_id=a-1&since=2000-01-01T00:00:00Z&min_position=%d", w.Position), "")
	for _, accept := range []string{"application/x-ndjson", "text/csv"} {
		res, b := s.call(t, "GET", "/v1/events", "", "Accept", accept)
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), accept) || len(b) == 0 {
			t.Fatalf("%s: %d %q", accept, res.StatusCode, b)
		}
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json"} {
		s.want(t, 200, "GET", p, "")
	}
	metrics := string(s.want(t, 200, "GET", "/metrics", ""))
	for _, m := range []string{"ledger_store_appended_events_total 3",
		"ledger_projection_applied_position 3", "ledger_projection_lag_events 0", "ledger_sse_clients 0",
		`ledger_http_requests_total{code="304",route="GET /v1/targets/{type}/{id}"} 1`, "ledger_projection_lag_seconds_count 3", "ledger_store_commit_batch_size_bucket"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("metrics lack %q", m)
		}
	}
	s.want(t, 400, "PUT", "/v1/targets/article/a-1/like/u1", "", "Idempotency-Key", "has space")
	s.want(t, 400, "GET", "/v1/targets/article/a-1/like?cursor=forged", "")
	s.want(t, 404, "GET", "/v1/nothing", "")
	s.want(t, 404, "PUT", "/v1/targets/article/a-1/bookmark/u1", "")
	s.want(t, 405, "POST", "/v1/targets/article/a-1", "")
	s.want(t, 406, "GET", "/v1/events", "", "Accept", "application/pdf")
	s.want(t, 412, "PUT", "/v1/targets/article/a-1/collect/u1", "", "If-Match", `"v0"`)
	s.want(t, 413, "PUT", "/v1/targets/article/a-1/collect/u1", strings.Repeat(" ", 5000), "Content-Type", "application/json")
	s.want(t, 415, "PUT", "/v1/targets/article/a-1/collect/u1", "source=web", "Content-Type", "text/plain")
	s.want(t, 200, "PUT", "/v1/targets/article/a-2/like/u1", "", "Idempotency-Key", "k1")
	s.want(t, 422, "DELETE", "/v1/targets/article/a-2/like/u1", "", "Idempotency-Key", "k1")
	s.want(t, 412, "GET", "/v1/targets/article/a-1", "", "Ledger-Min-Position", "1000000") // beyond the log
	s.stop(t)
}

func TestServeRateLimit(t *testing.T) {
	s := startServe(t, filepath.Join(t.TempDir(), "ledger.db"), map[string]string{"LEDGER_WRITE_RATE": "0.01"})
	s.want(t, 200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	s.want(t, 429, "PUT", "/v1/targets/article/a-1/collect/u1", "")
	s.want(t, 200, "PUT", "/v1/targets/article/a-1/like/u2", "")
}

func TestServeAuth(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	const admin, reader = "admin-secret-token-0001", "reader-secret-token-0001"
	if err := os.WriteFile(tokens, []byte(admin+" admin\n"+reader+" read\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const secret = "jwt-secret-of-at-least-32-bytes-long"
	s := startServe(t, filepath.Join(dir, "ledger.db"), map[string]string{"LEDGER_JWT_SECRET": secret}, "--tokens-file", tokens)
	s.want(t, 401, "GET", "/v1/targets/article/a-1", "")
	s.want(t, 401, "PUT", "/v1/targets/article/a-1/like/u1", "", "Authorization", "Bearer not-a-token")
	s.want(t, 403, "PUT", "/v1/targets/article/a-1/like/u1", "", "Authorization", "Bearer "+reader)
	s.want(t, 403, "GET", "/v1/events", "", "Authorization", "Bearer "+reader)
	u1 := signHS256(t, secret, "u1")
	s.want(t, 200, "PUT", "/v1/targets/article/a-1/like/u1", "", "Authorization", "Bearer "+u1)
	s.want(t, 403, "PUT", "/v1/targets/article/a-1/like/u2", "", "Authorization", "Bearer "+u1)
	s.want(t, 403, "GET", "/v1/users/u2/like", "", "Authorization", "Bearer "+u1)
	s.want(t, 200, "GET", "/v1/events", "", "Authorization", "Bearer "+admin)
	s.want(t, 200, "GET", "/healthz", "")
	s.stop(t)
	logs := s.logs.String()
	for _, tok := range []string{admin, reader, u1, secret, "not-a-token"} {
		if strings.Contains(logs, tok) {
			t.Fatal("a token appears in the server's logs")
		}
	}
}

// signHS256 builds a JWT by hand so that the test does not share the
// server's JWT code path.
func signHS256(t *testing.T, secret, sub string) string {
	t.Helper()
	tok, err := hs256(secret, fmt.Sprintf(`{"sub":%q,"exp":%d}`, sub, time.Now().Add(time.Hour).Unix()))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestServeRefusesNonLoopbackWithoutTokens(t *testing.T) {
	_, _, err := runCLI(t, "serve", "--listen", "0.0.0.0:0", "--db", filepath.Join(t.TempDir(), "ledger.db"))
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("got %v", err)
	}
	_, _, err = runCLI(t, "serve", "--log-format", "xml")
	if !errors.Is(err, errUsage) {
		t.Fatalf("bad log format: %v", err)
	}
}

// TestServeStream: the SSE stream backfills from Last-Event-ID, goes live,
// sends heartbeats, and ends when the server shuts down.
func TestServeStream(t *testing.T) {
	s := startServe(t, filepath.Join(t.TempDir(), "ledger.db"), nil, "--heartbeat", "20ms")
	s.want(t, 200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	s.want(t, 200, "PUT", "/v1/targets/article/a-1/like/u2", "")
	req, _ := http.NewRequestWithContext(t.Context(), "GET", s.base+"/v1/events/stream?after=0", nil)
	req.Header.Set("Last-Event-ID", "1")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	rd := bufio.NewReader(res.Body)
	if id, data := nextSSE(t, rd); id != "2" || !strings.Contains(data, `"counts":{"collect":0,"like":2}`) {
		t.Fatalf("backfill: %s %s", id, data)
	}
	s.want(t, 200, "DELETE", "/v1/targets/article/a-1/like/u2", "")
	if id, data := nextSSE(t, rd); id != "3" || !strings.Contains(data, `"type":"interaction.cancelled"`) || !strings.Contains(data, `"counts":{"collect":0,"like":1}`) {
		t.Fatalf("live: %s %s", id, data)
	}
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("no heartbeat: %v", err)
		}
		if strings.HasPrefix(line, ": heartbeat") {
			break
		}
	}
	s.stop(t)
	if _, err := io.ReadAll(rd); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("stream after shutdown: %v", err)
	}
}

func nextSSE(t *testing.T, rd *bufio.Reader) (id, data string) {
	t.Helper()
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("read stream: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		case line == "" && data != "":
			return id, data
		case line == "":
			id = "" // a frame without data (opening, heartbeat) only moves the resume point
		}
	}
}

// cancelOn is a server's stderr that cancels its context when a log line
// containing msg is written: a signal that arrives at that point of the
// startup.
type cancelOn struct {
	logWatch
	msg    string
	cancel context.CancelFunc
}

func (c *cancelOn) Write(p []byte) (int, error) {
	if strings.Contains(string(p), c.msg) {
		c.cancel()
	}
	return c.logWatch.Write(p)
}

// TestServeInterruptedStartup: a signal while serve starts (here while it
// builds a missing views file, or before it began) is a shutdown, not a
// failure: serve logs that startup was interrupted and returns nil (exit
// 0), as a signal after startup does. It used to exit 1 with "build all:
// context canceled".
func TestServeInterruptedStartup(t *testing.T) {
	db := filepath.Join(t.TempDir(), "i.db")
	mustFill(t, db, 50)
	os.Remove(db + ".views")
	for _, at := range []string{"rebuilding projections", "before start"} {
		ctx, cancel := context.WithCancel(t.Context())
		logs := &cancelOn{logWatch: logWatch{addr: make(chan string, 1)}, msg: at, cancel: cancel}
		if at == "before start" {
			cancel()
		}
		args := []string{"serve", "--listen", "127.0.0.1:0", "--db", db, "--log-format", "json"}
		err := run(ctx, args, func(string) string { return "" }, io.Discard, logs)
		cancel()
		if err != nil || !strings.Contains(logs.String(), `"msg":"startup interrupted"`) || strings.Contains(logs.String(), `"msg":"listening"`) {
			t.Errorf("a signal at %s: %v, want nil and startup interrupted logged\n%s", at, err, logs)
		}
	}
}

// JSON logs give durations in seconds (slog's own form is an integer of
// nanoseconds, which nothing in the line names).
func TestJSONLogDurationsInSeconds(t *testing.T) {
	var b bytes.Buffer
	log, err := newLogger(&b, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("applied", "took", 250*time.Millisecond)
	var line map[string]any
	if err := json.Unmarshal(b.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, b.Bytes())
	}
	if line["took"] != 0.25 {
		t.Errorf("took = %v, want 0.25 (seconds): %s", line["took"], b.Bytes())
	}
}

// TestServeRefusesAViewsFileServed: a second server given the views file
// another one serves (a node started with another node's --views) is
// refused, naming it. Both applied the log into the one file and each
// found the other's commits under its in-memory copy, which it reloaded
// from both tables every second instead of answering reads from memory.
func TestServeRefusesAViewsFileServed(t *testing.T) {
	db := filepath.Join(t.TempDir(), "one.db")
	first, _ := startServerChild(t, db)
	defer first.kill()
	second := startChild(t, "serve", "--listen", mustFreeAddr(t), "--db", db)
	defer second.kill()
	err := second.wait(t, 20*time.Second)
	if exitCode(err) != 1 || !strings.Contains(second.stderr.String(), "another server") ||
		!strings.Contains(second.stderr.String(), projections.ViewsPath(db)) {
		t.Fatalf("a second server on one views file: %v\n%s", err, second.stderr)
	}
}

// TestWalkthroughHeadersAreReal: the README's walkthrough, "real output",
// shows the headers of a target read (200) and of its revalidation (304);
// a real server sends exactly those header names.
func TestWalkthroughHeadersAreReal(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := startServe(t, filepath.Join(t.TempDir(), "walk.db"), nil)
	get := func(header ...string) *http.Response {
		req, err := http.NewRequestWithContext(t.Context(), "GET", s.base+"/v1/targets/article/a-1?viewer=u42", nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(header) == 2 {
			req.Header.Set(header[0], header[1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	ok := get()
	notModified := get("If-None-Match", ok.Header.Get("ETag"))
	for status, res := range map[string]*http.Response{"HTTP/1.1 200 OK": ok, "HTTP/1.1 304 Not Modified": notModified} {
		_, block, found := strings.Cut(string(readme), "\n"+status+"\n")
		if !found {
			t.Fatalf("README: no %q in the walkthrough", status)
		}
		block, _, _ = strings.Cut(block, "\n\n")
		var shown []string
		for line := range strings.SplitSeq(block, "\n") {
			name, _, _ := strings.Cut(line, ":")
			shown = append(shown, http.CanonicalHeaderKey(name))
		}
		var sent []string
		for name := range res.Header {
			sent = append(sent, name)
		}
		slices.Sort(shown)
		slices.Sort(sent)
		if !slices.Equal(shown, sent) {
			t.Errorf("README %s shows %v; the server sends %v", status, shown, sent)
		}
	}
}

// TestServeAnswersWhileBuildingViews: a server whose views file is being
// built at start (here held at the rebuild lock another rebuild holds)
// already listens: /healthz is 200 for a liveness probe, /readyz says it
// is starting and waits for that rebuild (it said "opening the views
// file" for as long), reads and writes are 503 "starting" (a write appends
// nothing), and "listening" is logged only once the views are open, when
// every route answers. It used to listen only after the build: a probe
// met refused connections for the whole build (tens of seconds for ten
// million events) and could kill the node mid-build, to begin it again.
func TestServeAnswersWhileBuildingViews(t *testing.T) {
	db := filepath.Join(t.TempDir(), "b.db")
	mustFill(t, db, 50)
	os.Remove(db + ".views")
	unlock, err := projections.LockRebuild(t.Context(), db+".views", nil)
	if err != nil {
		t.Fatal(err)
	}
	s := startServeUntil(t, "starting", db, nil)
	if res, b := s.call(t, "GET", "/healthz", ""); res.StatusCode != 200 {
		t.Errorf("/healthz while the views file waits to be built: %d %s", res.StatusCode, b)
	}
	waitFor(t, func() bool { return strings.Contains(s.logs.String(), "waiting for another rebuild") }, "the wait for the rebuild lock")
	if res, b := s.call(t, "GET", "/readyz", ""); res.StatusCode != 503 || !strings.Contains(string(b), "starting: waiting for another rebuild of the views file to end") {
		t.Errorf("/readyz while the views file waits to be built: %d %s", res.StatusCode, b)
	}
	for _, r := range [][2]string{{"GET", "/v1/targets/article/a-1"}, {"PUT", "/v1/targets/article/new/like/u1"}} {
		res, b := s.call(t, r[0], r[1], "")
		if res.StatusCode != 503 || !strings.Contains(string(b), "urn:ledger:problem:starting") || res.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s while opening: %d %s", r[0], r[1], res.StatusCode, b)
		}
	}
	if strings.Contains(s.logs.String(), `"msg":"listening"`) {
		t.Errorf("listening logged before the views were open:\n%s", s.logs)
	}
	unlock()
	if err := waitReady(t.Context(), s.base+"/readyz", time.Minute); err != nil {
		t.Fatalf("%v\n%s", err, s.logs)
	}
	if b := s.want(t, 200, "GET", "/v1/targets/article/new", ""); !strings.Contains(string(b), `"like":0`) {
		t.Errorf("the target written while starting: %s, want no like (the write appended nothing)", b)
	}
	if !strings.Contains(s.logs.String(), `"msg":"listening"`) {
		t.Errorf("listening not logged once the views were open:\n%s", s.logs)
	}
	s.stop(t)
}

// TestServeRefusesATakenPortFirst: a server given an address in use
// fails before it opens or makes anything: it made the log and its views
// file (and built the views, for a log without them) before it found the
// port taken.
func TestServeRefusesATakenPortFirst(t *testing.T) {
	taken := startServe(t, filepath.Join(t.TempDir(), "other.db"), nil)
	db := filepath.Join(t.TempDir(), "new.db")
	err := run(t.Context(), []string{"serve", "--listen", strings.TrimPrefix(taken.base, "http://"), "--db", db},
		func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("serve on a taken port: %v, want address already in use", err)
	}
	for _, f := range []string{db, db + ".views"} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("serve on a taken port made %s (%v)", f, err)
		}
	}
}
