package bus_test

import (
	"context"
	"flag"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/bus"
	"github.com/interactionledger/ledger/adapters/storebench"
	"github.com/interactionledger/ledger/adapters/storetest/loggen"
	"github.com/interactionledger/ledger/domain"
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

// logOnly hides a store's domain.RecentReader: its tails query the log.
type logOnly struct{ domain.Tailable }

// BenchmarkTailOwnCommits is a subscriber following its own store's
// commits, one append at a time (a server at a low write rate): each op
// appends one event and waits for its message. "memory" takes the commits
// from the store's memory (domain.RecentReader), "log" queries the log
// for them. Report cpu-us/op (the process's user and system time) beside
// ns/op; run the two alternated.
func BenchmarkTailOwnCommits(b *testing.B) {
	for _, mode := range []string{"memory", "log"} {
		b.Run(mode, func(b *testing.B) {
			store := MustStore(b, "")
			var tailed domain.Tailable = store
			if mode == "log" {
				tailed = logOnly{store}
			}
			ch := mustSubscribe(b, tailed, bus.SubscriberConfig{StartAfter: startAt(0)})
			l := domain.NewLedger(store, kinds, domain.LedgerConfig{}, nil)
			i := 0
			start := processCPU(b)
			for b.Loop() {
				set(b, l, "u"+strconv.Itoa(i), "article/a", "like", true)
				receive(b, ch).Ack()
				i++
			}
			b.ReportMetric(float64(processCPU(b)-start)/float64(time.Microsecond)/float64(b.N), "cpu-us/op")
		})
	}
}

// processCPU is the process's user and system time so far.
func processCPU(tb testing.TB) time.Duration {
	cpu, err := storebench.ProcessCPU()
	if err != nil {
		tb.Fatal(err)
	}
	return cpu
}
