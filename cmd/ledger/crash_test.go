package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/interactionledger/ledger/domain"
)

// ack is a write the server acknowledged with a 2xx that appended an event.
type ack struct {
	Changed       bool   `json:"changed"`
	User          string `json:"user"`
	Kind          string `json:"kind"`
	Active        bool   `json:"active"`
	StreamVersion int64  `json:"stream_version"`
	Position      int64  `json:"position"`
	Target        struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"target"`
}

// TestCrashSafety kills the real server with SIGKILL at random moments
// under concurrent writes, restarts it on the same file, and checks that
// every acknowledged write is in the log, the log has no gaps or
// duplicates, and the read model converges to what verify recomputes.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("crash cycles run in the full suite (make test), not with -short")
	}
	db := filepath.Join(t.TempDir(), "crash.db")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	var acked []ack
	for cycle := range 5 {
		srv, url := startServerChild(t, db)
		got := writeUntilKilled(t, url, srv, time.Duration(150+rng.IntN(600))*time.Millisecond)
		if len(got) == 0 {
			t.Fatalf("cycle %d: no write was acknowledged; stderr:\n%s", cycle, srv.stderr)
		}
		acked = append(acked, got...)
		checkLog(t, db, acked)
	}
	srv, url := startServerChild(t, db)
	checkCountsMatchLog(t, db, url)
	srv.cmd.Process.Signal(syscall.SIGTERM)
	if err := srv.wait(t, 30*time.Second); err != nil {
		t.Fatalf("graceful stop: %v\n%s", err, srv.stderr)
	}
	if out, errOut, err := runCLI(t, "verify", "--db", db); err != nil {
		t.Fatalf("verify after crashes: %v\n%s%s", err, out, errOut)
	}
}

// TestCrashDuringRebuild kills `ledger rebuild` midway: the live read model
// must stay intact (verify passes) and the server must start and serve.
func TestCrashDuringRebuild(t *testing.T) {
	if testing.Short() {
		t.Skip("crash cycles run in the full suite (make test), not with -short")
	}
	db := filepath.Join(t.TempDir(), "rebuild.db")
	fillLog(t, db, 20000)
	if _, errOut, err := runCLI(t, "rebuild", "--db", db); err != nil {
		t.Fatalf("first rebuild: %v\n%s", err, errOut)
	}
	for _, delay := range []time.Duration{5 * time.Millisecond, 40 * time.Millisecond, 150 * time.Millisecond} {
		c := startChild(t, "rebuild", "--db", db)
		time.Sleep(delay)
		c.kill()
		if out, errOut, err := runCLI(t, "verify", "--db", db); err != nil {
			t.Fatalf("verify after a rebuild killed at %s: %v\n%s%s", delay, err, out, errOut)
		}
	}
	srv, url := startServerChild(t, db)
	checkCountsMatchLog(t, db, url)
	srv.kill()
}

// writeUntilKilled drives concurrent toggles and SIGKILLs the server d
// after the first acknowledged one; it returns the acknowledged writes
// that appended an event.
func writeUntilKilled(t *testing.T, url string, srv *child, d time.Duration) []ack {
	t.Helper()
	var mu sync.Mutex
	var acked []ack
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for {
				select {
				case <-stop:
					return
				default:
				}
				a, ok := toggle(client, url, rng)
				if ok && a.Changed {
					mu.Lock()
					acked = append(acked, a)
					mu.Unlock()
				}
			}
		})
	}
	// The kill comes d after the first acknowledged write: a fixed d from
	// the start left a loaded machine (load average 28) without one, and
	// the cycle checked nothing.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n > 0 {
			break
		}
	}
	time.Sleep(d)
	srv.kill()
	close(stop)
	wg.Wait()
	return acked
}

func toggle(client *http.Client, url string, rng *rand.Rand) (ack, bool) {
	method := http.MethodPut
	if rng.IntN(2) == 0 {
		method = http.MethodDelete
	}
	kind := []string{"like", "collect"}[rng.IntN(2)]
	path := fmt.Sprintf("%s/v1/targets/article/c%d/%s/u%d", url, rng.IntN(20), kind, rng.IntN(30))
	req, _ := http.NewRequest(method, path, nil)
	resp, err := client.Do(req)
	if err != nil {
		return ack{}, false // killed mid-request: outcome unknown, not acknowledged
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return ack{}, false
	}
	var a ack
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		return ack{}, false // the body was cut by the kill: not acknowledged
	}
	return a, true
}

// checkLog opens the log as an analyst would and checks every
// acknowledged write, gap-free positions, unique ids and contiguous stream
// versions.
func checkLog(t *testing.T, db string, acked []ack) {
	t.Helper()
	ctx := context.Background()
	byPos := map[int64]domain.Event{}
	ids := map[string]bool{}
	versions := map[string]int64{}
	err := readLog(ctx, db, func(e domain.Event) error {
		if e.Position != int64(len(byPos)+1) {
			return fmt.Errorf("position %d after %d events: a gap", e.Position, len(byPos))
		}
		if ids[e.ID.String()] {
			return fmt.Errorf("duplicate event id %s", e.ID)
		}
		ids[e.ID.String()] = true
		s := e.Stream().String()
		if e.StreamVersion != versions[s]+1 {
			return fmt.Errorf("stream %s jumps from version %d to %d", s, versions[s], e.StreamVersion)
		}
		versions[s] = e.StreamVersion
		byPos[e.Position] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acked {
		e, ok := byPos[a.Position]
		if !ok {
			t.Fatalf("acknowledged write at position %d is not in the log", a.Position)
		}
		if e.User.String() != a.User || e.Kind.String() != a.Kind || e.Target.ID() != a.Target.ID ||
			e.On() != a.Active || e.StreamVersion != a.StreamVersion {
			t.Fatalf("position %d holds %+v, the server acknowledged %+v", a.Position, e, a)
		}
	}
}

// checkCountsMatchLog compares the served counts of every target with the
// number of streams whose kind is on at the end of the log.
func checkCountsMatchLog(t *testing.T, db, url string) {
	t.Helper()
	ctx := context.Background()
	type key struct{ target, user, kind string }
	on := map[key]bool{}
	err := readLog(ctx, db, func(e domain.Event) error {
		on[key{e.Target.String(), e.User.String(), e.Kind.String()}] = e.On()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]int64{}
	for k, isOn := range on {
		if want[k.target] == nil {
			want[k.target] = map[string]int64{"like": 0, "collect": 0}
		}
		if isOn {
			want[k.target][k.kind]++
		}
	}
	for target, counts := range want {
		resp, body := httpDo(t, http.MethodGet, url+"/v1/targets/"+target)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d %s", target, resp.StatusCode, body)
		}
		var got struct{ Counts map[string]int64 }
		json.Unmarshal(body, &got)
		for k, n := range counts {
			if got.Counts[k] != n {
				t.Errorf("%s %s: served %d, log says %d", target, k, got.Counts[k], n)
			}
		}
	}
}

// fillLog appends n events straight through the domain service.
func fillLog(t *testing.T, db string, n int) {
	t.Helper()
	ctx := context.Background()
	l, done := mustLedgerAt(t, db)
	defer done()
	var wg sync.WaitGroup
	per := n / 32
	for w := range 32 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range per {
				u, _ := domain.NewUserID(fmt.Sprintf("u%d-%d", w, i%500))
				tg, _ := domain.NewTarget("article", fmt.Sprintf("r%d", rng.IntN(300)))
				k, _ := domain.ParseKind([]string{"like", "collect"}[rng.IntN(2)])
				if _, err := l.Set(ctx, domain.SetRequest{User: u, Target: tg, Kind: k, On: rng.IntN(3) > 0}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
