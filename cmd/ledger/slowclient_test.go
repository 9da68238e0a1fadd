package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// padding makes each event's SSE frame about 600 bytes, so a stalled
// client's socket buffers fill after a few hundred events.
var padding = `{"metadata":{"pad":"` + strings.Repeat("p", 500) + `"}}`

// TestStalledStreamClient: a live-stream client that connects and never
// reads must not hold writers back: writes keep completing (each answered
// 200) until the server drops it, counts it in
// ledger_sse_dropped_clients_total and closes its connection.
func TestStalledStreamClient(t *testing.T) {
	if testing.Short() {
		t.Skip("load tests run in the full suite (make test), not with -short")
	}
	s := startServe(t, filepath.Join(t.TempDir(), "stall.db"), nil)
	addr := strings.TrimPrefix(s.base, "http://")
	stalled := mustDialSmallBuffer(t, addr)
	fmt.Fprintf(stalled, "GET /v1/events/stream HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	waitFor(t, func() bool { return sseClients(t, s) == 1 }, "the stalled client to be streaming")
	rounds := 0
	for ; sseDropped(t, s) == 0; rounds++ {
		if rounds == 50 {
			t.Fatalf("the stalled client was not dropped after %d writes", rounds*200)
		}
		mustWriteN(t, s, 200, rounds)
	}
	if !closedByServer(stalled) {
		t.Fatal("the stalled client's connection is still open after it was dropped")
	}
	if n := sseClients(t, s); n != 0 {
		t.Fatalf("%v stream clients after the drop", n)
	}
	mustWriteN(t, s, 200, rounds) // and writers go on
	t.Logf("dropped after %d writes", rounds*200)
}

// TestSlowStreamClient: a live-stream client that reads in small sips
// with pauses does not hold 1000 writes back, and whatever it receives is
// in position order (it may be dropped if it falls too far behind).
func TestSlowStreamClient(t *testing.T) {
	if testing.Short() {
		t.Skip("load tests run in the full suite (make test), not with -short")
	}
	s := startServe(t, filepath.Join(t.TempDir(), "slow.db"), nil)
	slow := startSlowReader(t, s.base)
	for round := range 5 {
		mustWriteN(t, s, 200, round)
	}
	frames, gaps := slow.stop()
	t.Logf("the slow reader got %d frames", frames)
	if gaps != "" {
		t.Fatalf("slow reader: %s", gaps)
	}
}

// mustWriteN sends 200 concurrent writes of padded metadata; each must be
// answered 200.
func mustWriteN(t *testing.T, s *served, n, round int) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			method := []string{"PUT", "DELETE"}[round%2]
			path := fmt.Sprintf("/v1/targets/article/st%d/like/u%d", i%50, i)
			res, body := s.call(t, method, path, padding, "Content-Type", "application/json")
			if res.StatusCode != 200 {
				t.Errorf("%s %s: %d %s", method, path, res.StatusCode, body)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// mustDialSmallBuffer connects with a 4 KiB receive buffer, so that a
// client that never reads stops the server's writes soon.
func mustDialSmallBuffer(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// closedByServer drains conn and reports whether the server closed it
// (EOF or reset) rather than leaving it open.
func closedByServer(conn net.Conn) bool {
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := io.Copy(io.Discard, conn)
	ne, ok := err.(net.Error)
	return !(ok && ne.Timeout())
}

// sseDropped reads ledger_sse_dropped_clients_total from /metrics.
func sseDropped(t *testing.T, s *served) float64 {
	t.Helper()
	return mustMetric(t, s, "ledger_sse_dropped_clients_total")
}

// sseClients reads how many live-stream clients the server has.
func sseClients(t *testing.T, s *served) float64 {
	t.Helper()
	return mustMetric(t, s, "ledger_sse_clients")
}

// mustMetric reads one unlabelled sample from /metrics.
func mustMetric(t *testing.T, s *served, name string) float64 {
	t.Helper()
	_, body := s.call(t, "GET", "/metrics", "")
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// slowReader is a live-stream client that reads a little, then pauses.
type slowReader struct {
	cancel context.CancelFunc
	done   chan struct{}
	frames int
	gaps   string
}

func startSlowReader(t *testing.T, base string) *slowReader {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events/stream?after=0", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("stream: %v %v", res, err)
	}
	r := &slowReader{cancel: cancel, done: make(chan struct{})}
	go r.read(res.Body)
	return r
}

// read takes 4 KiB every 20ms and checks that ids only increase.
func (r *slowReader) read(body io.ReadCloser) {
	defer close(r.done)
	defer body.Close()
	rd := bufio.NewReaderSize(body, 4096)
	last, id := int64(0), ""
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "id: "); ok {
			id = v
		}
		// Only events carry data; the opening frame and heartbeats repeat
		// the last id as a resume point.
		if strings.HasPrefix(line, "data: ") {
			n, _ := strconv.ParseInt(id, 10, 64)
			if n <= last && r.gaps == "" {
				r.gaps = fmt.Sprintf("id %d after %d", n, last)
			}
			last = n
			r.frames++
			if r.frames%8 == 0 {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
}

func (r *slowReader) stop() (int, string) {
	r.cancel()
	<-r.done
	return r.frames, r.gaps
}

// TestSlowloris opens 200 connections that send their headers one byte at
// a time. The server must cut each off after --read-header-timeout (well
// before its 15 s read timeout) while still serving everyone else.
func TestSlowloris(t *testing.T) {
	s := startServe(t, filepath.Join(t.TempDir(), "loris.db"), nil, "--read-header-timeout", "500ms")
	addr := strings.TrimPrefix(s.base, "http://")
	const conns = 200
	cut := make(chan error, conns)
	for range conns {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		go trickle(conn, addr)
		go func() { cut <- waitClosed(conn, 10*time.Second) }()
	}
	for i := range 20 {
		s.want(t, 200, "GET", "/healthz", "")
		s.want(t, 200, "PUT", fmt.Sprintf("/v1/targets/article/loris/like/u%d", i), "")
	}
	for range conns {
		if err := <-cut; err != nil {
			t.Fatal(err)
		}
	}
	MustStayHealthy(t, s)
}

// trickle sends a request's headers one byte every 50ms and never ends
// them.
func trickle(conn net.Conn, addr string) {
	head := "GET /healthz HTTP/1.1\r\nHost: " + addr + "\r\nX-Slow: " + strings.Repeat("z", 1000)
	for i := 0; ; i = (i + 1) % len(head) {
		if _, err := conn.Write([]byte{head[i]}); err != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitClosed returns nil once the server closes conn, or an error when it
// is still open after limit (the read timeout, not the header timeout,
// would be what ends it).
func waitClosed(conn net.Conn, limit time.Duration) error {
	conn.SetReadDeadline(time.Now().Add(limit))
	_, err := io.Copy(io.Discard, conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return fmt.Errorf("a slowloris connection was still open after %s", limit)
	}
	return nil
}
