// Command sseload holds many live-stream clients on a running ledger while
// it writes, and reports what they received: events missed, repeated or out
// of order, the delay from an event's commit (its recorded_at) to each
// client, the clients the server ended, and the server's memory (read from
// /proc when -pid is given). docs/performance.md ("Overload and many live
// subscribers") has the commands it was run with.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8080", "the server")
	subs := flag.Int("subs", 1000, "live-stream clients")
	stalled := flag.Int("stalled", 0, "of them, clients that connect and never read")
	rate := flag.Float64("rate", 200, "writes per second while the clients are open")
	dur := flag.Duration("duration", 20*time.Second, "how long to write")
	pid := flag.Int("pid", 0, "the server's process id, to report its RSS and open files")
	resume := flag.Bool("resume", false, "reconnect a client the server ends, from its last id, until the run ends")
	from := flag.Int64("from", -1, "the position the clients resume after (a reconnect storm from an old position); -1: the applied position")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *url, *subs, *stalled, *rate, *dur, *pid, *resume, *from); err != nil {
		fmt.Fprintln(os.Stderr, "sseload:", err)
		os.Exit(1)
	}
}

type client struct {
	first, last int64 // the stream's opening id and the last id seen
	events      int64
	bad         []string // gaps, repeats, disorder
	delays      []time.Duration
	ends        []string // how each connection ended
	reconnects  int
}

func run(ctx context.Context, url string, n, stalled int, rate float64, dur time.Duration, pid int, resume bool, from int64) error {
	tr := &http.Transport{MaxIdleConnsPerHost: -1, DisableCompression: true,
		DialContext: (&net.Dialer{}).DialContext}
	hc := &http.Client{Transport: tr}
	head, err := applied(hc, url)
	if err != nil {
		return err
	}
	if from >= 0 {
		head = from
	}
	before := procStats(pid)
	clients := make([]*client, n)
	var open atomic.Int64
	var wg sync.WaitGroup
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i := range n {
		clients[i] = &client{first: head, last: head}
		wg.Go(func() {
			if i < stalled {
				stall(cctx, url, head, &open)
				return
			}
			follow(cctx, hc, url, clients[i], &open, resume)
		})
	}
	deadline := time.Now().Add(30 * time.Second)
	for open.Load() < int64(n) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	during := procStats(pid)
	fmt.Printf("%d clients open (%d stalled); server before: %s, with them: %s\n", open.Load(), stalled, before, during)
	written, failed := write(ctx, hc, url, rate, dur)
	final, _ := applied(hc, url)
	time.Sleep(2 * time.Second) // let the last events reach every client
	fmt.Printf("wrote %d (failed %v), head %d -> %d; server now: %s\n", written, failed, head, final, procStats(pid))
	cancel()
	wg.Wait()
	report(clients[stalled:], head, final)
	return nil
}

// follow reads one stream until ctx ends, checking every id.
func follow(ctx context.Context, hc *http.Client, url string, c *client, open *atomic.Int64, resume bool) {
	counted := false
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, "GET", url+"/v1/events/stream?after="+strconv.FormatInt(c.last, 10), nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := hc.Do(req)
		if err != nil {
			c.ends = append(c.ends, "connect: "+shortErr(err))
		} else if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			c.ends = append(c.ends, fmt.Sprintf("status %d %s", resp.StatusCode, bytes.TrimSpace(b)))
		} else {
			if !counted {
				open.Add(1)
				counted = true
			}
			c.ends = append(c.ends, readFrames(resp.Body, c))
			resp.Body.Close()
		}
		if !resume || ctx.Err() != nil {
			return
		}
		c.reconnects++
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

func readFrames(body io.Reader, c *client) string {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var id int64 = -1
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if data != nil {
				c.event(id, data)
			}
			id, data = -1, nil
		case bytes.HasPrefix(line, []byte("id: ")):
			id, _ = strconv.ParseInt(string(line[4:]), 10, 64)
		case bytes.HasPrefix(line, []byte("data: ")):
			data = slices.Clone(line[6:])
		}
	}
	if err := sc.Err(); err != nil {
		return "read: " + shortErr(err)
	}
	return "clean end"
}

func (c *client) event(id int64, data []byte) {
	now := time.Now()
	switch {
	case id == c.last+1:
	case id <= c.last:
		c.bad = append(c.bad, fmt.Sprintf("%d after %d", id, c.last))
		return
	default:
		c.bad = append(c.bad, fmt.Sprintf("gap %d..%d", c.last+1, id-1))
	}
	c.last = id
	c.events++
	var e struct {
		RecordedAt time.Time `json:"recorded_at"`
	}
	if json.Unmarshal(data, &e) == nil {
		c.delays = append(c.delays, now.Sub(e.RecordedAt))
	}
}

// stall opens a stream on a raw connection with a small receive buffer and
// never reads it.
func stall(ctx context.Context, url string, after int64, open *atomic.Int64) {
	addr := strings.TrimPrefix(url, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(conn, "GET /v1/events/stream?after=%d HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", after, addr)
	open.Add(1)
	<-ctx.Done()
}

// write likes and unlikes at rate per second for dur.
func write(ctx context.Context, hc *http.Client, url string, rate float64, dur time.Duration) (int64, map[string]int) {
	var written atomic.Int64
	var mu sync.Mutex
	failed := map[string]int{}
	run := time.Now().Unix() // a new set of users each run, so its likes change something
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	end := time.After(dur)
	var wg sync.WaitGroup
	for i := 0; ; i++ {
		select {
		case <-tick.C:
		case <-end:
			wg.Wait()
			return written.Load(), failed
		case <-ctx.Done():
			wg.Wait()
			return written.Load(), failed
		}
		wg.Go(func() {
			// Each pair is liked, then unliked 1000 writes later: nearly
			// every write appends an event.
			j, method := i%1000, []string{"PUT", "DELETE"}[(i/1000)%2]
			req, _ := http.NewRequestWithContext(ctx, method, fmt.Sprintf("%s/v1/targets/article/s%d/like/u%d-%d", url, j%97, run, j), nil)
			resp, err := hc.Do(req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed[shortErr(err)]++
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				failed[strconv.Itoa(resp.StatusCode)]++
				return
			}
			written.Add(1)
		})
	}
}

func report(cs []*client, head, final int64) {
	var all []time.Duration
	complete, bad := 0, 0
	ends := map[string]int{}
	reconnects := 0
	for _, c := range cs {
		all = append(all, c.delays...)
		if c.last >= final && len(c.bad) == 0 {
			complete++
		}
		if len(c.bad) > 0 {
			bad++
			if bad <= 3 {
				fmt.Printf("  client errors: %v\n", c.bad[:min(5, len(c.bad))])
			}
		}
		for _, e := range c.ends {
			ends[e]++
		}
		reconnects += c.reconnects
	}
	slices.Sort(all)
	q := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[int(p*float64(len(all)-1))].Round(10 * time.Microsecond)
	}
	fmt.Printf("%d reading clients: %d got every event %d..%d in order, %d saw a gap, repeat or disorder; %d reconnects\n",
		len(cs), complete, head+1, final, bad, reconnects)
	fmt.Printf("commit-to-client delay over %d deliveries: p50 %v p90 %v p99 %v max %v\n", len(all), q(0.5), q(0.9), q(0.99), q(1))
	fmt.Printf("connection ends: %v\n", ends)
}

func applied(hc *http.Client, url string) (int64, error) {
	resp, err := hc.Get(url + "/readyz")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct{ Applied int64 }
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, fmt.Errorf("readyz: %w", err)
	}
	return r.Applied, nil
}

// procStats is the server's RSS and open files, from /proc.
func procStats(pid int) string {
	if pid == 0 {
		return "(no -pid)"
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err.Error()
	}
	rss := ""
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			rss = strings.Join(strings.Fields(l)[1:], " ")
		}
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return fmt.Sprintf("RSS %s, %d open files, CPU %.2fs", rss, len(fds), cpuSeconds(pid))
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

// cpuSeconds is the process's user and system CPU time so far, from
// /proc/<pid>/stat (in clock ticks of 1/100 s).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100
}
