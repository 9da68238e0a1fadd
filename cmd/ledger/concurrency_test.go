package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/interactionledger/ledger/domain"
)

// loadClient keeps enough idle connections for hundreds of goroutines.
var loadClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 0},
}

// outcome is the tally of a concurrent run.
type outcome struct {
	mu    sync.Mutex
	acked []ack
	busy  atomic.Int64 // 503 contention answers (allowed: retry later)
}

func (o *outcome) add(a ack) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.acked = append(o.acked, a)
}

// mustWrite sends one toggle and records it: a 200 must report the
// requested state; a 503 must carry Retry-After; anything else fails.
func mustWrite(t *testing.T, o *outcome, base, method, path string) {
	req, err := http.NewRequestWithContext(t.Context(), method, base+path, nil)
	if err != nil {
		t.Error(err)
		return
	}
	res, err := loadClient.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		return
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	switch {
	case res.StatusCode == 503 && res.Header.Get("Retry-After") != "":
		o.busy.Add(1)
	case res.StatusCode != 200:
		t.Errorf("%s %s: %d %s", method, path, res.StatusCode, body)
	default:
		var a ack
		if err := json.Unmarshal(body, &a); err != nil || a.Active != (method == http.MethodPut) {
			t.Errorf("%s %s: answered %s (%v)", method, path, body, err)
			return
		}
		o.add(a)
	}
}

// TestConcurrentToggleOneStream: 200 goroutines toggle the same (user,
// target, kind) through the real server. Every acknowledged change is in
// the log with contiguous stream versions, and the served state and count
// equal what the last event of the stream decided.
func TestConcurrentToggleOneStream(t *testing.T) {
	if testing.Short() {
		t.Skip("load tests run in the full suite (make test), not with -short")
	}
	db := filepath.Join(t.TempDir(), "toggle.db")
	s := startServe(t, db, nil)
	o := &outcome{}
	var wg sync.WaitGroup
	for g := range 200 {
		wg.Go(func() {
			for i := range 3 {
				method := []string{http.MethodPut, http.MethodDelete}[(g+i)%2]
				mustWrite(t, o, s.base, method, "/v1/targets/article/hot/like/u1")
			}
		})
	}
	wg.Wait()
	if len(o.acked) == 0 {
		t.Fatalf("no write acknowledged (%d busy)", o.busy.Load())
	}
	checkLog(t, db, changedOnly(o.acked))
	last := lastEvents(t, db)
	if n := last["article/hot|u1|like"].StreamVersion; n != int64(len(changedOnly(o.acked))) {
		t.Fatalf("the stream has %d events, %d changes were acknowledged", n, len(changedOnly(o.acked)))
	}
	on := last["article/hot|u1|like"].On()
	got := decode[targetBody](t, s.want(t, 200, "GET", "/v1/targets/article/hot?viewer=u1", ""))
	if got.Viewer["like"] != on || got.Counts["like"] != map[bool]int64{false: 0, true: 1}[on] {
		t.Fatalf("served %+v; the last event says on=%v", got, on)
	}
	t.Logf("%d acknowledged, %d changed, %d busy", len(o.acked), len(changedOnly(o.acked)), o.busy.Load())
	s.stop(t)
}

// TestConcurrentHotTarget: 500 users like, unlike and like again one hot
// target at once while readers watch its count. No read ever sees a count
// below 0 or above 500, and at the end the count equals the number of
// users whose last event is on.
func TestConcurrentHotTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("load tests run in the full suite (make test), not with -short")
	}
	db := filepath.Join(t.TempDir(), "hot.db")
	s := startServe(t, db, nil)
	o := &outcome{}
	stop := make(chan struct{})
	readers := watchCounts(t, s.base, "/v1/targets/article/viral", stop)
	var wg sync.WaitGroup
	for u := range 500 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(u), 3))
			path := fmt.Sprintf("/v1/targets/article/viral/like/u%d", u)
			for range 1 + rng.IntN(3) {
				method := []string{http.MethodPut, http.MethodDelete}[rng.IntN(2)]
				mustWrite(t, o, s.base, method, path)
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	checkLog(t, db, changedOnly(o.acked))
	var want int64
	for key, e := range lastEvents(t, db) {
		if e.On() && strings.HasPrefix(key, "article/viral|") {
			want++
		}
	}
	got := decode[targetBody](t, s.want(t, 200, "GET", "/v1/targets/article/viral", ""))
	if got.Counts["like"] != want {
		t.Fatalf("count %d, the log has %d active streams", got.Counts["like"], want)
	}
	checkCountsMatchLog(t, db, s.base)
	s.stop(t)
	if out, errOut, err := runCLI(t, "verify", "--db", db); err != nil {
		t.Fatalf("verify: %v\n%s%s", err, out, errOut)
	}
}

// watchCounts reads path in a loop until stop and fails on a count below
// 0 or above 500.
func watchCounts(t *testing.T, base, path string, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := loadClient.Get(base + path)
				if err != nil {
					t.Errorf("read: %v", err)
					return
				}
				var v targetBody
				err = json.NewDecoder(res.Body).Decode(&v)
				res.Body.Close()
				if err != nil || res.StatusCode != 200 {
					t.Errorf("read: %d %v", res.StatusCode, err)
					return
				}
				for k, n := range v.Counts {
					if n < 0 || n > 500 {
						t.Errorf("count of %s is %d", k, n)
					}
				}
			}
		})
	}
	return &wg
}

func changedOnly(as []ack) []ack {
	var out []ack
	for _, a := range as {
		if a.Changed {
			out = append(out, a)
		}
	}
	return out
}

// lastEvents returns the last event of every stream, keyed
// "type/id|user|kind", and fails when a stream does not alternate between
// on and off (a toggle appends only changes).
func lastEvents(t *testing.T, db string) map[string]domain.Event {
	t.Helper()
	ctx := context.Background()
	last := map[string]domain.Event{}
	err := readLog(ctx, db, func(e domain.Event) error {
		key := e.Target.String() + "|" + e.User.String() + "|" + e.Kind.String()
		if prev, ok := last[key]; !ok && !e.On() || ok && prev.On() == e.On() {
			return fmt.Errorf("stream %s: event %d repeats the state of the one before", key, e.Position)
		}
		last[key] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return last
}
