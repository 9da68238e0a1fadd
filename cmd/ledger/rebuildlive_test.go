package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// TestRebuildWhileServing runs `ledger rebuild` on the file a live server
// is writing and reading: every read during the rebuild is answered, the
// server's counts afterwards equal the log, and verify passes.
func TestRebuildWhileServing(t *testing.T) {
	db := filepath.Join(t.TempDir(), "live.db")
	fillLog(t, db, 16000)
	// A write waits for its read model, which a rebuild's write
	// transactions hold back; on a loaded machine (load average 28) one
	// wait passed the default 2 s and answered the documented 503 (the
	// write durable). This test is about what the rebuild leaves, not its
	// latency: writes wait up to the longest timeout a server allows.
	srv, url := startServerChild(t, db, "--consistency-timeout", "30s")
	defer srv.kill()
	stop := make(chan struct{})
	var reads, bad atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				path := fmt.Sprintf("%s/v1/targets/article/r%d?viewer=u%d-1", url, (w*31+i)%300, w)
				if w == 0 {
					path = fmt.Sprintf("%s/v1/targets/article/r%d/like/live%d", url, i%300, i%50)
					toggleOnce(t, http.MethodPut, path, &bad)
					continue
				}
				resp, body := httpDo(t, http.MethodGet, path)
				var v struct{ Counts map[string]int64 }
				if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &v) != nil || v.Counts["like"] < 0 {
					bad.Add(1)
					t.Errorf("read during rebuild: %d %s", resp.StatusCode, body)
				}
				reads.Add(1)
			}
		})
	}
	for range 2 {
		if _, errOut, err := runCLI(t, "rebuild", "--db", db); err != nil {
			t.Fatalf("rebuild beside a live server: %v\n%s", err, errOut)
		}
	}
	close(stop)
	wg.Wait()
	if reads.Load() == 0 || bad.Load() > 0 {
		t.Fatalf("%d reads during the rebuilds, %d failed", reads.Load(), bad.Load())
	}
	checkCountsMatchLog(t, db, url)
	if out, _, err := runCLI(t, "verify", "--db", db); err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
}

func toggleOnce(t *testing.T, method, url string, bad *atomic.Int64) {
	resp, body := httpDo(t, method, url)
	if resp.StatusCode != http.StatusOK {
		bad.Add(1)
		t.Errorf("write during rebuild: %d %s", resp.StatusCode, body)
	}
}
