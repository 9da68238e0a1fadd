package loadgen_test

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/interactionledger/ledger/cmd/ledger/internal/loadgen"
)

func TestRunMixAndErrors(t *testing.T) {
	var writes, feeds, bad atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut || r.Method == http.MethodDelete:
			writes.Add(1)
		case r.URL.Path == "/v1/targets":
			feeds.Add(1)
			if n := strings.Count(r.URL.RawQuery, "t=article/"); n != 5 {
				t.Errorf("feed page of %d targets, want 5", n)
			}
			w.Write([]byte(strings.Repeat("x", 10000))) // a chunked answer
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/targets/") && !strings.HasSuffix(r.URL.Path, "/like"):
			w.Header().Set("Connection", "close") // the client must dial again
		case strings.HasSuffix(r.URL.Path, "/like"):
			bad.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	cfg := loadgen.DefaultConfig()
	cfg.URL, cfg.Clients, cfg.Duration, cfg.FeedSize, cfg.Users, cfg.Targets = srv.URL, 4, 300*time.Millisecond, 5, 100, 50
	rep, err := loadgen.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A request cut off by the end of the run is served but not measured:
	// at most one per client.
	if got := int64(rep.Op(loadgen.OpWrite).Count); got == 0 || got > writes.Load() || got < writes.Load()-int64(cfg.Clients) {
		t.Errorf("writes counted %d, served %d", got, writes.Load())
	}
	if rep.Op(loadgen.OpFeed).Count == 0 || rep.Op(loadgen.OpTarget).P99 <= 0 {
		t.Errorf("report %+v", rep.Ops)
	}
	if n := rep.Errors["read_list 503"]; n == 0 || int64(n) > bad.Load() {
		t.Errorf("errors %v, served %d failures", rep.Errors, bad.Load())
	}
	for k, n := range rep.Errors {
		if strings.Contains(k, "transport error") {
			t.Errorf("%d %s", n, k)
		}
	}
	share := float64(writes.Load()) / float64(rep.Requests)
	if share < 0.1 || share > 0.3 {
		t.Errorf("write share %.2f, want about 0.2", share)
	}
}

func TestValidate(t *testing.T) {
	if _, err := loadgen.Run(context.Background(), loadgen.DefaultConfig()); err == nil || !strings.Contains(err.Error(), "url") {
		t.Errorf("Run without a URL: %v", err)
	}
	cfg := loadgen.DefaultConfig()
	cfg.Zipf, cfg.WriteRatio, cfg.Rate = 1, 2, math.NaN()
	err := cfg.Validate()
	for _, want := range []string{"zipf", "write ratio", "rate NaN"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %s", err, want)
		}
	}
}

// With a rate, the clients send on a schedule: never more than it offers,
// however fast the server answers.
func TestRateCapsTheLoad(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served.Add(1) }))
	defer srv.Close()
	cfg := loadgen.DefaultConfig()
	cfg.URL, cfg.Clients, cfg.Duration, cfg.Rate = srv.URL, 4, 500*time.Millisecond, 400
	rep, err := loadgen.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// 400/s for 0.5 s is 200 requests; each client's first is due at once.
	if n := served.Load(); n > 200+int64(cfg.Clients) || n < 20 {
		t.Errorf("served %d requests at 400/s for 0.5 s, want at most %d", n, 200+cfg.Clients)
	}
	if rep.Offered != 400 {
		t.Errorf("report offered %g, want 400", rep.Offered)
	}
}

// A paced request's latency counts from when it was due: a client behind
// a slow server reports the time its requests waited to be sent too.
func TestRateCountsTheWait(t *testing.T) {
	const service = 20 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(service) }))
	defer srv.Close()
	cfg := loadgen.DefaultConfig()
	cfg.URL, cfg.Clients, cfg.Duration, cfg.Rate, cfg.WriteRatio = srv.URL, 1, 400*time.Millisecond, 200, 0
	rep, err := loadgen.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	n, worst := 0, time.Duration(0)
	for _, o := range rep.Ops {
		n, worst = n+o.Count, max(worst, o.Max)
	}
	// Due every 5 ms, answered every >= 20 ms: the k-th request (from 0)
	// is sent >= 20k ms after it was due at 5k ms.
	if want := service*time.Duration(n) - 5*time.Millisecond*time.Duration(n-1); n < 3 || worst < want {
		t.Errorf("%d requests, worst latency %s; want at least %s", n, worst, want)
	}
}

// TestToggleUndoesOwnWrites: with Toggle every unlike names a pair the
// same client liked before and has not unliked since, so nearly every
// write of the mix changes a stream; without it most unlikes name pairs
// never liked. Over a few pairs (liked again while on), each is still
// unliked once: a pair liked twice was listed twice, and its second
// unlike changed nothing.
func TestToggleUndoesOwnWrites(t *testing.T) {
	for _, c := range []struct {
		toggle         bool
		users, targets int
	}{{true, 100_000, 10_000}, {false, 100_000, 10_000}, {true, 3, 3}} {
		toggle := c.toggle
		var mu sync.Mutex
		on := map[string]bool{}
		var unlikes, undone int
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			switch r.Method {
			case http.MethodPut:
				on[r.URL.Path] = true
			case http.MethodDelete:
				unlikes++
				if on[r.URL.Path] {
					undone++
				}
				delete(on, r.URL.Path)
			}
		}))
		cfg := loadgen.DefaultConfig()
		cfg.URL, cfg.Clients, cfg.Duration, cfg.WriteRatio, cfg.Toggle = srv.URL, 1, 200*time.Millisecond, 1, toggle
		cfg.Users, cfg.Targets = c.users, c.targets
		if _, err := loadgen.Run(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		srv.Close()
		if unlikes < 20 {
			t.Fatalf("toggle=%t: %d unlikes in the run, too few to judge", toggle, unlikes)
		}
		if share := float64(undone) / float64(unlikes); (toggle && share < 1) || (!toggle && share > 0.05) {
			t.Errorf("toggle=%t: %d of %d unlikes undid a like", toggle, undone, unlikes)
		}
	}
}
