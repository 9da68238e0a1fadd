package loadgen_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
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
	if n := rep.Errors["transport error"]; n > 0 {
		t.Errorf("%d transport errors", n)
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
	cfg.Zipf, cfg.WriteRatio = 1, 2
	err := cfg.Validate()
	for _, want := range []string{"zipf", "write ratio"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %s", err, want)
		}
	}
}
