package projections_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

// BenchmarkTargetsFeed reads feed pages (50 targets with a viewer, as
// bench http does) from the memory model and from SQLite.
func BenchmarkTargetsFeed(b *testing.B) {
	memoryAndSQLite(b, func(b *testing.B, s *projections.Set) {
		rng := rand.New(rand.NewPCG(9, 9))
		l, on := newEventLog(b), map[string]bool{}
		for range 20 {
			from := len(l.events)
			for range 1000 {
				user, target := fmt.Sprintf("u%d", rng.IntN(100)), fmt.Sprintf("article/a%d", rng.IntN(2000))
				key := user + " " + target
				on[key] = !on[key]
				l.add(user, target, like, on[key])
			}
			applyAll(b, s, l.events[from:])
		}
		ts := make([]domain.Target, 50)
		for i := range ts {
			ts[i] = mustTarget(b, fmt.Sprintf("article/a%d", i*40))
		}
		viewer := mustUser(b, "u7")
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := s.Targets(ctx, ts, &viewer); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkActorsPage reads the first page of "who liked it" (50 actors of
// a target with 2,000 likes, a fifth of them cancelled), as bench http's
// list reads do, from the memory model and from SQLite.
func BenchmarkActorsPage(b *testing.B) {
	memoryAndSQLite(b, func(b *testing.B, s *projections.Set) {
		l := newEventLog(b)
		for i := range 2000 {
			l.add(fmt.Sprintf("u%d", i), "article/hot", like, true)
		}
		for i := 0; i < 2000; i += 5 {
			l.add(fmt.Sprintf("u%d", i), "article/hot", like, false)
		}
		applyAll(b, s, l.events)
		target := mustTarget(b, "article/hot")
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			page, err := s.Actors(ctx, target, like, 50, "")
			if err != nil || len(page.Items) != 50 {
				b.Fatalf("%d actors, %v", len(page.Items), err)
			}
		}
	})
}

// memoryAndSQLite runs f as two sub-benchmarks: on a set that answers
// from the memory model and on one that reads SQLite.
func memoryAndSQLite(b *testing.B, f func(*testing.B, *projections.Set)) {
	for _, c := range []struct {
		name string
		rows int
	}{{"Memory", 0}, {"SQLite", -1}} {
		b.Run(c.name, func(b *testing.B) { f(b, openWith(b, "", c.rows)) })
	}
}
