package bus_test

import (
	"context"
	"flag"
	"path/filepath"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/storetest/loggen"
	"github.com/interactionledger/ledger/projections"
)

var benchEvents = flag.Int64("bench.events", 200_000, "events in the pipeline benchmark's generated log")

// BenchmarkPipelineCatchUp measures the whole live path: a router with one
// store subscriber and handler per projection catching up on a generated
// log, from empty views to the log's head.
func BenchmarkPipelineCatchUp(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	store := MustStore(b, filepath.Join(dir, "ledger.db"))
	n, err := loggen.Generate(ctx, store, loggen.Config{Events: *benchEvents, Users: 100_000, Targets: 50_000, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	i := 0
	for b.Loop() {
		b.StopTimer()
		s, err := projections.Open(ctx, projections.Config{Path: filepath.Join(dir, "views"+string(rune('a'+i))), Kinds: kinds}, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		i++
		b.StartTimer()
		start := time.Now()
		p := MustRun(b, store, s)
		if err := s.WaitFor(ctx, n); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		b.StopTimer()
		p.stop()
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "events/s")
}
