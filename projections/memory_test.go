package projections_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

// openWith opens a views file at path (a temp file when empty) with
// memoryRows as Config.MemoryRows.
func openWith(tb testing.TB, path string, memoryRows int) *projections.Set {
	tb.Helper()
	if path == "" {
		path = filepath.Join(tb.TempDir(), "ledger.db.views")
	}
	s, err := projections.Open(context.Background(), projections.Config{Path: path, Kinds: kinds, MemoryRows: memoryRows}, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// randomToggles appends n consistent toggles over a small universe, with
// a kind that is not configured among them.
func randomToggles(l *eventLog, rng *rand.Rand, n int, on map[string]bool) {
	share := mustKind("share")
	for range n {
		user, target := fmt.Sprintf("u%d", rng.IntN(12)), fmt.Sprintf("article/a%d", rng.IntN(9))
		if rng.IntN(5) == 0 {
			target = fmt.Sprintf("video/v%d", rng.IntN(3))
		}
		k := []domain.Kind{like, like, coll, share}[rng.IntN(4)]
		key := user + " " + target + " " + k.String()
		on[key] = !on[key]
		l.add(user, target, k, on[key])
	}
}

// allTargets is every target randomToggles uses, and one never touched.
func allTargets(tb testing.TB) []domain.Target {
	var ts []domain.Target
	for i := range 9 {
		ts = append(ts, mustTarget(tb, fmt.Sprintf("article/a%d", i)))
	}
	for i := range 3 {
		ts = append(ts, mustTarget(tb, fmt.Sprintf("video/v%d", i)))
	}
	return append(ts, mustTarget(tb, "article/never"))
}

// sameAnswers fails when got and want answer any target read differently:
// one target, a feed page, with and without each viewer.
func sameAnswers(t *testing.T, got, want *projections.Set) {
	t.Helper()
	ctx := context.Background()
	ts := allTargets(t)
	viewers := []*domain.UserID{nil}
	for i := range 12 {
		u := mustUser(t, fmt.Sprintf("u%d", i))
		viewers = append(viewers, &u)
	}
	for _, v := range viewers {
		g, err := got.Targets(ctx, ts, v)
		if err != nil {
			t.Fatal(err)
		}
		w, err := want.Targets(ctx, ts, v)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("viewer %v:\nmemory %+v\nSQLite %+v", v, g, w)
		}
		one, err := got.Target(ctx, ts[0], v)
		if err != nil || !reflect.DeepEqual(one, w[0]) {
			t.Fatalf("one target, viewer %v: %+v, %v; want %+v", v, one, err, w[0])
		}
	}
	for _, target := range ts {
		for _, k := range []domain.Kind{like, coll} {
			for _, limit := range []int{1, 2, 5, 0} {
				g, w := allActors(t, got, target, k, limit), allActors(t, want, target, k, limit)
				if !reflect.DeepEqual(g, w) {
					t.Fatalf("actors of %s %s, pages of %d:\nmemory %+v\nSQLite %+v", target, k, limit, g, w)
				}
			}
		}
	}
}

// allActors reads every page of an actors list; each page's items, and
// whether a next page was offered, in order.
func allActors(t *testing.T, s *projections.Set, target domain.Target, k domain.Kind, limit int) [][]projections.Actor {
	t.Helper()
	var pages [][]projections.Actor
	cursor := ""
	for {
		page, err := s.Actors(context.Background(), target, k, limit, cursor)
		if err != nil {
			t.Fatalf("actors of %s %s after %q: %v", target, k, cursor, err)
		}
		pages = append(pages, page.Items)
		if page.Next == "" {
			return pages
		}
		if len(pages) > 100 {
			t.Fatalf("actors of %s %s: more than 100 pages", target, k)
		}
		cursor = page.Next
	}
}

func mustMemory(t *testing.T, s *projections.Set, at int64) {
	t.Helper()
	pos, ok := projections.MemoryPosition(s)
	if !ok || pos != at {
		t.Fatalf("memory model at %d (answering: %v), want answering at %d", pos, ok, at)
	}
}

// TestMemoryMatchesSQLite applies the same random batches to a set that
// answers from memory and one that reads SQLite, and compares every
// target read after each batch.
func TestMemoryMatchesSQLite(t *testing.T) {
	mem, sql := openWith(t, "", 0), openWith(t, "", -1)
	rng := rand.New(rand.NewPCG(1, 2))
	l, on := newEventLog(t), map[string]bool{}
	for range 40 {
		from := len(l.events)
		randomToggles(l, rng, 1+rng.IntN(30), on)
		applyAll(t, mem, l.events[from:])
		applyAll(t, sql, l.events[from:])
		mustMemory(t, mem, int64(len(l.events)))
		if _, ok := projections.MemoryPosition(sql); ok {
			t.Fatal("MemoryRows -1 keeps a memory model")
		}
		sameAnswers(t, mem, sql)
	}
}

// TestMemoryLoadsAtOpen reopens a views file: the model is loaded from it.
func TestMemoryLoadsAtOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db.views")
	first := openWith(t, path, 0)
	l := newEventLog(t)
	randomToggles(l, rand.New(rand.NewPCG(3, 4)), 200, map[string]bool{})
	applyAll(t, first, l.events)
	first.Close()
	mem, sql := openWith(t, path, 0), openWith(t, path, -1)
	mustMemory(t, mem, 200)
	sameAnswers(t, mem, sql)
}

// TestOneSnapshot checks that a lone liker's count and viewer state agree
// in every read while batches are applied as the bus applies them
// (ApplyAll): a read that mixed the counts of one position with the
// viewer state of another would see 1 and false or 0 and true. (Reads
// from SQLite failed this when each projection committed on its own.)
func TestOneSnapshot(t *testing.T) {
	applyTogether := func(tb testing.TB, s *projections.Set, events []domain.Event) {
		if err := s.ApplyAll(context.Background(), nil, events); err != nil {
			tb.Fatal(err)
		}
	}
	t.Run("Memory", func(t *testing.T) { oneSnapshot(t, openWith(t, "", 0), applyTogether) })
	t.Run("SQLite", func(t *testing.T) { oneSnapshot(t, openWith(t, "", -1), applyTogether) })
}

func oneSnapshot(t *testing.T, s *projections.Set, apply func(testing.TB, *projections.Set, []domain.Event)) {
	l := newEventLog(t)
	target, user := mustTarget(t, "article/solo"), mustUser(t, "alice")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				v, err := s.Target(context.Background(), target, &user)
				if err == nil && (v.Counts["like"] == 1) != v.Viewer["like"] {
					err = fmt.Errorf("count %d with viewer %v at position %d", v.Counts["like"], v.Viewer["like"], v.Position)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := range 2000 {
		apply(t, s, []domain.Event{l.add("alice", "article/solo", like, i%2 == 0)})
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestApplyAllKeepsNothingOfAFailure: when one projection fails, ApplyAll
// keeps nothing of the batch (the counts projection, which would have
// succeeded, stays where it was) and marks the failing one.
func TestApplyAllKeepsNothingOfAFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db.views")
	s := openWith(t, path, 0)
	l := newEventLog(t)
	ctx := context.Background()
	if err := s.ApplyAll(ctx, nil, []domain.Event{l.add("alice", "article/a1", like, true)}); err != nil {
		t.Fatal(err)
	}
	// Corrupt the viewer table behind the set's back: the cancel that
	// follows finds no row to delete.
	if _, err := mustDB(t, path).Exec(`DELETE FROM viewer`); err != nil {
		t.Fatal(err)
	}
	err := s.ApplyAll(ctx, nil, []domain.Event{l.add("alice", "article/a1", like, false)})
	if !errors.Is(err, projections.ErrFailed) || !strings.Contains(err.Error(), projections.Viewer) {
		t.Fatalf("got %v, want the viewer projection failed", err)
	}
	for _, name := range s.Names() {
		if cp, err := s.Checkpoint(ctx, name); err != nil || cp != 1 {
			t.Fatalf("%s checkpoint %d (%v), want 1: nothing of the failed batch kept", name, cp, err)
		}
	}
	v, err := s.Target(ctx, mustTarget(t, "article/a1"), nil)
	if err != nil || v.Counts["like"] != 1 || v.Position != 1 {
		t.Fatalf("after the failed batch: %+v, %v", v, err)
	}
	// The failed transaction was ended: the one write connection takes the
	// next batch (of the projection that did not fail).
	if err := s.Apply(ctx, projections.Counts, l.events[1:]); err != nil {
		t.Fatalf("the batch after a failed one: %v", err)
	}
	if cp, err := s.Checkpoint(ctx, projections.Counts); err != nil || cp != 2 {
		t.Fatalf("counts checkpoint %d (%v) after the next batch, want 2", cp, err)
	}
}

// TestMemoryReadsItsWrite: once a position is applied (WaitFor returns),
// a read shows the event, and the read's position is at least it.
func TestMemoryReadsItsWrite(t *testing.T) {
	s := openWith(t, "", 0)
	l := newEventLog(t)
	ctx := context.Background()
	user := mustUser(t, "bob")
	for i := range 50 {
		e := l.add("bob", "article/a1", like, i%2 == 0)
		if err := s.Apply(ctx, projections.Counts, []domain.Event{e}); err != nil {
			t.Fatal(err)
		}
		// Counts has committed and viewer not yet: the model does not
		// answer (SQLite does) until both are at one position.
		if _, ok := projections.MemoryPosition(s); ok {
			t.Fatal("the model answers while counts is ahead of viewer")
		}
		for _, n := range s.Names()[1:] {
			if err := s.Apply(ctx, n, []domain.Event{e}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.WaitFor(ctx, e.Position); err != nil {
			t.Fatal(err)
		}
		mustMemory(t, s, e.Position)
		v, err := s.Target(ctx, e.Target, &user)
		if err != nil {
			t.Fatal(err)
		}
		want := int64(1 - i%2)
		if v.Counts["like"] != want || v.Viewer["like"] != (want == 1) || v.Position != e.Position {
			t.Fatalf("after event %d: %+v", e.Position, v)
		}
	}
}

// TestMemoryAnotherWriter: a second set on the same file (another
// process) applies events; the first set's model must notice at its next
// commit, read SQLite meanwhile, and reload.
func TestMemoryAnotherWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db.views")
	serving, other, sql := openWith(t, path, 0), openWith(t, path, -1), openWith(t, path, -1)
	projections.RetryMemoryAtOnce(serving)
	rng := rand.New(rand.NewPCG(5, 6))
	l, on := newEventLog(t), map[string]bool{}
	randomToggles(l, rng, 100, on)
	applyAll(t, serving, l.events)
	mustMemory(t, serving, 100)

	randomToggles(l, rng, 100, on)
	applyAll(t, other, l.events[100:])
	randomToggles(l, rng, 50, on)
	ctx := context.Background()
	if err := serving.Apply(ctx, projections.Counts, l.events[100:]); err != nil {
		t.Fatal(err)
	}
	if _, ok := projections.MemoryPosition(serving); ok {
		t.Fatal("the model still answers after another writer moved the checkpoints")
	}
	sameAnswers(t, serving, sql)
	for _, n := range serving.Names()[1:] {
		if err := serving.Apply(ctx, n, l.events[100:]); err != nil {
			t.Fatal(err)
		}
	}
	mustMemory(t, serving, 250)
	sameAnswers(t, serving, sql)
}

// TestMemoryRebuild: a rebuild in the serving process replaces the tables;
// the model reloads and agrees with SQLite.
func TestMemoryRebuild(t *testing.T) {
	store := MustStore(t)
	MustGenerate(t, store, 3000)
	path := filepath.Join(t.TempDir(), "ledger.db.views")
	s := openWith(t, path, 0)
	applyLive(t, s, store, 700)
	mustMemory(t, s, 3000)
	if err := s.Rebuild(context.Background(), store, nil, nil); err != nil {
		t.Fatal(err)
	}
	mustMemory(t, s, 3000)
	sql := openWith(t, path, -1)
	ctx := context.Background()
	for i := range 26 {
		for u := range 40 {
			user := mustUser(t, fmt.Sprintf("u%d", u))
			target := mustTarget(t, fmt.Sprintf("article/a%d", i))
			if i == 25 {
				target = mustTarget(t, "article/hot")
			}
			g, err1 := s.Target(ctx, target, &user)
			w, err2 := sql.Target(ctx, target, &user)
			if err1 != nil || err2 != nil || !reflect.DeepEqual(g, w) {
				t.Fatalf("%s by %s: memory %+v (%v), SQLite %+v (%v)", target, user, g, err1, w, err2)
			}
		}
	}
}

// TestMemoryOffPastLimit: past MemoryRows the model turns off and reads go
// to SQLite.
func TestMemoryOffPastLimit(t *testing.T) {
	mem, sql := openWith(t, "", 20), openWith(t, "", -1)
	l := newEventLog(t)
	randomToggles(l, rand.New(rand.NewPCG(7, 8)), 300, map[string]bool{})
	applyAll(t, mem, l.events)
	applyAll(t, sql, l.events)
	if _, ok := projections.MemoryPosition(mem); ok {
		t.Fatal("the model answers past its limit")
	}
	sameAnswers(t, mem, sql)
}

// TestMemoryAnswersBetweenBatches checks that readers never find the
// in-memory model between two of a batch's projections (its lanes at
// different positions), where it would send them to SQLite: every
// projection of a batch moves under one hold of the model's lock.
func TestMemoryAnswersBetweenBatches(t *testing.T) {
	s := openWith(t, "", 0)
	l, rng, on := newEventLog(t), rand.New(rand.NewPCG(7, 7)), map[string]bool{}
	var misses atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, ok := projections.MemoryPosition(s); !ok {
					misses.Add(1)
				}
				runtime.Gosched() // leave the applier its turns (the race detector slows the lock)
			}
		})
	}
	for range 150 {
		from := len(l.events)
		randomToggles(l, rng, 3, on)
		if err := s.ApplyAll(t.Context(), nil, l.events[from:]); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	if n := misses.Load(); n > 0 {
		t.Fatalf("%d reads found the model between a batch's projections", n)
	}
}
