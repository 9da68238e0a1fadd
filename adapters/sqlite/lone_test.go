package sqlite

import (
	"errors"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/interactionledger/ledger/adapters/storebench"
	"github.com/interactionledger/ledger/domain"
)

// A lone appender commits each append on its own, at the next position.
func TestLoneAppender(t *testing.T) {
	var commits, appends atomic.Int64
	s := MustOpen(t, Config{Path: filepath.Join(t.TempDir(), "ledger.db"), OnCommit: func(st CommitStats) {
		commits.Add(1)
		appends.Add(int64(st.Appends))
	}})
	for i := range 20 {
		res, err := s.Append(t.Context(), likeReq(t, s, "article/a"+strconv.Itoa(i)))
		if err != nil || res.LastPosition != int64(i+1) {
			t.Fatalf("append %d: %+v, %v; want position %d", i, res, err, i+1)
		}
	}
	if commits.Load() != 20 || appends.Load() != 20 {
		t.Fatalf("%d commits of %d appends, want 20 of 20", commits.Load(), appends.Load())
	}
}

// Concurrent appenders still share commits, and every append gets a
// position of its own.
func TestConcurrentAppendersShareCommits(t *testing.T) {
	var commits atomic.Int64
	s := MustOpen(t, Config{Path: filepath.Join(t.TempDir(), "ledger.db"),
		OnCommit: func(CommitStats) { commits.Add(1) }})
	const appenders, each = 64, 10
	positions := make(chan int64, appenders*each)
	var wg sync.WaitGroup
	for a := range appenders {
		wg.Go(func() {
			for i := range each {
				res, err := s.Append(t.Context(), likeReq(t, s, "article/a"+strconv.Itoa(a*each+i)))
				if err != nil {
					t.Error(err)
					return
				}
				positions <- res.LastPosition
			}
		})
	}
	wg.Wait()
	close(positions)
	seen := map[int64]bool{}
	for p := range positions {
		if seen[p] || p < 1 || p > appenders*each {
			t.Fatalf("position %d twice or out of 1..%d", p, appenders*each)
		}
		seen[p] = true
	}
	if len(seen) != appenders*each || commits.Load() >= appenders*each {
		t.Fatalf("%d appends in %d commits, want %d appends sharing commits", len(seen), commits.Load(), appenders*each)
	}
}

// Close while appenders run: each append is either acknowledged and
// stored, or refused with ErrClosed and not stored.
func TestCloseDuringAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := Open(t.Context(), Config{Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		id  uuid.UUID
		err error
	}
	outcomes := make(chan outcome, 1<<16)
	var answered atomic.Int64
	enough := make(chan struct{})
	var wg sync.WaitGroup
	for a := range 3 {
		wg.Go(func() {
			for i := 0; ; i++ {
				req := likeReq(t, s, "article/a"+strconv.Itoa(a)+"-"+strconv.Itoa(i))
				_, err := s.Append(t.Context(), req)
				outcomes <- outcome{req.Events[0].ID, err}
				if answered.Add(1) == 30 {
					close(enough)
				}
				if err != nil {
					return
				}
			}
		})
	}
	<-enough
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(outcomes)
	r := MustOpen(t, Config{Path: path})
	for o := range outcomes {
		if o.err != nil && !errors.Is(o.err, domain.ErrClosed) {
			t.Fatalf("append: %v, want success or ErrClosed", o.err)
		}
		stored, err := r.HasEvent(t.Context(), o.id)
		if err != nil || stored != (o.err == nil) {
			t.Fatalf("append answered %v, stored %t (%v)", o.err, stored, err)
		}
	}
}

// MeasurePair with a lone appender writes the same number of appends after the same
// prefill on both sides, in turns.
func TestMeasurePairLone(t *testing.T) {
	dir := t.TempDir()
	raw, ledger, err := MeasurePair(t.Context(), dir, PairConfig{Prefill: 30, Appends: 25, Round: 7, Appenders: 1, PerTx: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		name string
		res  storebench.Result
	}{{"bench-raw.db", raw}, {"bench-append.db", ledger}} {
		if r.res.Appends != 25 || r.res.PerSecond <= 0 || r.res.Commits != 25 {
			t.Errorf("%s: %+v", r.name, r.res)
		}
		s, err := OpenReadOnly(t.Context(), filepath.Join(dir, r.name), nil)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := s.LastPosition(t.Context()); err != nil || n != 55 {
			t.Errorf("%s ends at %d (%v), want 55", r.name, n, err)
		}
		s.Close()
	}
	if _, _, err := MeasurePair(t.Context(), t.TempDir(), PairConfig{Appends: 5, Appenders: 1, PerTx: 1}); !errors.Is(err, domain.ErrInvalidInput) {
		t.Errorf("round 0: %v, want ErrInvalidInput", err)
	}
}

// MeasurePair with several appenders writes each side's appends in turns
// after the same prefill, and counts each side's commits.
func TestMeasurePairAppenders(t *testing.T) {
	dir := t.TempDir()
	raw, ledger, err := MeasurePair(t.Context(), dir, PairConfig{Prefill: 30, Appends: 50, Round: 20, Appenders: 8, PerTx: 7})
	if err != nil {
		t.Fatal(err)
	}
	// Turns of 20, 20 and 10 appends at 7 per transaction: 3+3+2 commits.
	if raw.Appends != 50 || raw.Commits != 8 || raw.PerSecond <= 0 {
		t.Errorf("raw: %+v, want 50 appends in 8 commits", raw)
	}
	if ledger.Appends != 50 || ledger.Commits < 1 || ledger.Commits > 50 || ledger.PerSecond <= 0 {
		t.Errorf("ledger: %+v, want 50 appends in 1..50 commits", ledger)
	}
	for _, name := range []string{"bench-raw.db", "bench-append.db"} {
		s, err := OpenReadOnly(t.Context(), filepath.Join(dir, name), nil)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := s.LastPosition(t.Context()); err != nil || n != 80 {
			t.Errorf("%s ends at %d (%v), want 80", name, n, err)
		}
		s.Close()
	}
	for _, c := range []PairConfig{{Appends: 5, Round: 1, Appenders: 0, PerTx: 1}, {Appends: 5, Round: 1, Appenders: 1, PerTx: 0}} {
		if _, _, err := MeasurePair(t.Context(), t.TempDir(), c); !errors.Is(err, domain.ErrInvalidInput) {
			t.Errorf("%+v: %v, want ErrInvalidInput", c, err)
		}
	}
}
