package projections_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuf) Write(p []byte) (int, error) { b.mu.Lock(); defer b.mu.Unlock(); return b.b.Write(p) }
func (b *syncBuf) String() string              { b.mu.Lock(); defer b.mu.Unlock(); return b.b.String() }

// Set.Close while live Apply batches, a Rebuild, queries, WaitFor callers
// and OnApplied listeners run: no panic, no hang, WaitFor callers return,
// queries after Close answer ErrClosed. Reports what an Apply after Close
// does to the set's health (Err) and the log.
func TestSetCloseDuringApplyAndRebuild(t *testing.T) {
	store := MustStore(t)
	MustGenerate(t, store, 6000)
	all, err := domain.AppendEvents(nil, store.ReadEvents(context.Background(), domain.EventFilter{}))
	if err != nil {
		t.Fatal(err)
	}
	for round := range 6 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			logs := &syncBuf{}
			log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			var statuses atomic.Int64
			path := filepath.Join(t.TempDir(), "ledger.db.views")
			s, err := projections.Open(context.Background(), projections.Config{Path: path, Kinds: kinds,
				OnStatus: func(projections.Status) { statuses.Add(1) }}, nil, log)
			if err != nil {
				t.Fatal(err)
			}
			var heard atomic.Int64
			unhook := s.OnApplied(func(projections.AppliedEvent) { heard.Add(1) })
			defer unhook()
			ctx := context.Background()
			var wg sync.WaitGroup
			var applyErrs sync.Map
			// live applier
			wg.Go(func() {
				for i := 0; i < len(all); i += 50 {
					err := s.ApplyAll(ctx, nil, all[i:min(i+50, len(all))])
					if err != nil {
						applyErrs.Store(err.Error(), true)
						return
					}
				}
			})
			// a rebuild (round-dependent)
			if round%2 == 1 {
				wg.Go(func() {
					if err := s.Rebuild(ctx, store, nil, nil); err != nil {
						applyErrs.Store("rebuild: "+err.Error(), true)
					}
				})
			}
			// queries
			tg := all[0].Target
			for range 3 {
				wg.Go(func() {
					for {
						_, err := s.Target(ctx, tg, &all[0].User)
						if err != nil {
							if !errors.Is(err, domain.ErrClosed) {
								applyErrs.Store("query: "+err.Error(), true)
							}
							return
						}
						if _, err := s.Actors(ctx, tg, all[0].Kind, 10, ""); err != nil {
							if !errors.Is(err, domain.ErrClosed) {
								applyErrs.Store("actors: "+err.Error(), true)
							}
							return
						}
					}
				})
			}
			// waiters
			waitCtx, cancelWait := context.WithTimeout(ctx, 15*time.Second)
			defer cancelWait()
			var waiting sync.WaitGroup
			var waitTimedOut atomic.Int64
			for range 4 {
				waiting.Go(func() {
					if err := s.WaitFor(waitCtx, 1<<40); errors.Is(err, context.DeadlineExceeded) {
						waitTimedOut.Add(1)
					}
				})
			}
			time.Sleep(time.Duration(20+round*40) * time.Millisecond)
			closed := make(chan error, 1)
			go func() { closed <- s.Close() }()
			select {
			case err := <-closed:
				if err != nil {
					t.Logf("Close: %v", err)
				}
			case <-time.After(20 * time.Second):
				buf := make([]byte, 1<<20)
				t.Fatalf("Set.Close hung\n%s", buf[:runtime.Stack(buf, true)])
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("appliers/queries hung after Close")
			}
			waiting.Wait()
			if _, err := s.Target(ctx, tg, nil); !errors.Is(err, domain.ErrClosed) {
				t.Errorf("Target after Close: %v, want ErrClosed", err)
			}
			var msgs []string
			applyErrs.Range(func(k, _ any) bool { msgs = append(msgs, k.(string)); return true })
			t.Logf("applied %d, heard %d; errors: %q; Err()=%v; OnStatus calls %d; WaitFor callers that waited out their own timeout: %d",
				s.Applied(), heard.Load(), msgs, s.Err(), statuses.Load(), waitTimedOut.Load())
			if s.Err() != nil {
				t.Errorf("the set reports a failed projection after Close raced an Apply: %v", s.Err())
			}
			if l := logs.String(); strings.Contains(l, "level=ERROR") {
				t.Errorf("error logged by a Close racing Apply:\n%s", grepErr(l))
			}
			if waitTimedOut.Load() > 0 {
				t.Errorf("%d WaitFor callers kept waiting after Close until their own deadline", waitTimedOut.Load())
			}
		})
	}
}

func grepErr(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "ERROR") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
