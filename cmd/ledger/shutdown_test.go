package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// answers tallies what clients saw while the server shut down.
type answers struct {
	mu      sync.Mutex
	acked   []ack
	ok      atomic.Int64
	unavail atomic.Int64 // 503 problems with Retry-After
	refused atomic.Int64 // connections the closed listener refused
	lost    []string     // request ids of requests that got no answer
}

// TestGracefulShutdown sends SIGTERM to the real server while writers,
// readers and a live stream are busy. Every request either completes or
// gets a 503 problem with Retry-After; the stream ends; the process exits
// 0 within the drain timeout; every acknowledged write is in the log and
// a restarted server serves the counts the log implies. A request that
// got no answer at all must be one the server never read (a keep-alive
// connection it closed while idle, or the closed listener): the server's
// request log must not know its id.
func TestGracefulShutdown(t *testing.T) {
	db := filepath.Join(t.TempDir(), "shutdown.db")
	const drain = 5 * time.Second
	srv, url := startServerChild(t, db, "--drain-timeout", drain.String(), "--log-format", "json")
	stream := mustOpenStream(t, url)
	a := &answers{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 12 {
		wg.Go(func() { shutdownLoad(t, url, a, w, true, stop) })
	}
	for r := range 4 {
		wg.Go(func() { shutdownLoad(t, url, a, r, false, stop) })
	}
	waitFor(t, func() bool { return a.ok.Load() >= 200 }, "200 answers before SIGTERM")
	waiting := startWaitingRead(url)
	time.Sleep(200 * time.Millisecond) // let the waiting read reach the server
	start := time.Now()
	srv.cmd.Process.Signal(syscall.SIGTERM)
	err := srv.wait(t, drain+10*time.Second)
	took := time.Since(start)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("exit after SIGTERM: %v\nstderr:\n%s", err, srv.stderr)
	}
	if took > drain+5*time.Second {
		t.Fatalf("exit took %s, drain timeout %s", took, drain)
	}
	if res := <-waiting; res.err != nil || res.status != 503 || res.retryAfter == "" {
		t.Fatalf("a read waiting for min_position during shutdown: %+v, want a 503 with Retry-After", res)
	}
	if _, err := io.Copy(io.Discard, stream); err != nil {
		t.Fatalf("the live stream did not end cleanly: %v\nthe server's lines on streams:\n%s", err, linesWith(srv.stderr.String(), "stream"))
	}
	t.Logf("exit after %s: %d ok, %d 503, %d refused, %d unanswered and unread, %d writes acknowledged",
		took, a.ok.Load(), a.unavail.Load(), a.refused.Load(), len(a.lost), len(a.acked))
	checkNeverRead(t, srv.stderr.String(), a.lost)
	checkLog(t, db, changedOnly(a.acked))
	srv, url = startServerChild(t, db)
	checkCountsMatchLog(t, db, url)
	srv.kill()
}

// waitingAnswer is what the in-flight waiting read got.
type waitingAnswer struct {
	status     int
	retryAfter string
	err        error
}

// startWaitingRead sends a read whose min_position the server will not
// reach, so that it is still waiting (for the consistency timeout) when
// shutdown starts.
func startWaitingRead(url string) <-chan waitingAnswer {
	out := make(chan waitingAnswer, 1)
	go func() {
		res, err := http.Get(url + "/v1/targets/article/s1?min_position=1000000000")
		if err != nil {
			out <- waitingAnswer{err: err}
			return
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		out <- waitingAnswer{status: res.StatusCode, retryAfter: res.Header.Get("Retry-After")}
	}()
	return out
}

// shutdownLoad sends writes (or reads) until stop or until the server
// refuses connections, and checks every answer.
func shutdownLoad(t *testing.T, url string, a *answers, seed int, write bool, stop <-chan struct{}) {
	client := &http.Client{Timeout: 30 * time.Second}
	rng := rand.New(rand.NewPCG(uint64(seed), 11))
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		method, path := http.MethodGet, fmt.Sprintf("/v1/targets/article/s%d?viewer=u%d", rng.IntN(10), rng.IntN(20))
		if write {
			method = []string{http.MethodPut, http.MethodDelete}[rng.IntN(2)]
			path = fmt.Sprintf("/v1/targets/article/s%d/like/u%d", rng.IntN(10), rng.IntN(20))
		}
		req, _ := http.NewRequest(method, url+path, nil)
		id := fmt.Sprintf("sd-%t-%d-%d", write, seed, i)
		req.Header.Set("X-Request-ID", id)
		res, err := client.Do(req)
		if errors.Is(err, syscall.ECONNREFUSED) {
			a.refused.Add(1)
			return
		}
		if err != nil {
			a.mu.Lock()
			a.lost = append(a.lost, id)
			a.mu.Unlock()
			continue
		}
		checkShutdownAnswer(t, a, res, method, path)
	}
}

func checkShutdownAnswer(t *testing.T, a *answers, res *http.Response, method, path string) {
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Errorf("%s %s: body cut off: %v", method, path, err)
		return
	}
	switch {
	case res.StatusCode == 200:
		a.ok.Add(1)
		if method == http.MethodGet {
			return
		}
		var ak ack
		if err := json.Unmarshal(body, &ak); err != nil {
			t.Errorf("%s %s: %s", method, path, body)
			return
		}
		a.mu.Lock()
		a.acked = append(a.acked, ak)
		a.mu.Unlock()
	case res.StatusCode == 503 && res.Header.Get("Retry-After") != "" && res.Header.Get("Content-Type") == "application/problem+json":
		a.unavail.Add(1)
	default:
		t.Errorf("%s %s during shutdown: %d %s %s", method, path, res.StatusCode, res.Header, body)
	}
}

// checkNeverRead fails when the server's request log (JSON lines) holds
// one of the ids whose request got no answer: the server handled it and
// then dropped the response.
func checkNeverRead(t *testing.T, stderr string, lost []string) {
	t.Helper()
	handled := map[string]int{}
	for _, line := range strings.Split(stderr, "\n") {
		var rec struct {
			Msg       string
			RequestID string `json:"request_id"`
			Status    int
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "request" {
			handled[rec.RequestID] = rec.Status
		}
	}
	if len(handled) == 0 {
		t.Fatal("no request log lines in the server's stderr")
	}
	for _, id := range lost {
		if status, ok := handled[id]; ok {
			t.Errorf("request %s: the server answered %d, the client got nothing: an in-flight request was dropped", id, status)
		}
	}
}

// mustOpenStream connects a live SSE client and waits for its first bytes.
func mustOpenStream(t *testing.T, url string) io.Reader {
	t.Helper()
	res, err := http.Get(url + "/v1/events/stream")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("stream: %v %v", res, err)
	}
	t.Cleanup(func() { res.Body.Close() })
	rd := bufio.NewReader(res.Body)
	if _, err := rd.ReadString('\n'); err != nil {
		t.Fatalf("stream: %v", err)
	}
	return rd
}

// waitFor polls cond (set-up, not an assertion on speed) for up to a
// minute.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// linesWith is the lines of s that contain sub.
func linesWith(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}
