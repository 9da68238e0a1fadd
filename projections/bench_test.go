package projections_test

import (
	"context"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/sqlite"
	"github.com/interactionledger/ledger/adapters/storetest/loggen"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

var benchEvents = flag.Int64("bench.events", 1_000_000, "events in the benchmarks' generated log")

var (
	benchOnce  sync.Once
	benchDir   string
	benchStore *sqlite.EventStore
	benchErr   error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if benchStore != nil {
		benchStore.Close()
	}
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// generated returns a store holding *benchEvents generated events, built
// once per test binary run (generation is not what is measured).
func generated(b *testing.B) *sqlite.EventStore {
	b.Helper()
	benchOnce.Do(func() {
		ctx := context.Background()
		if benchDir, benchErr = os.MkdirTemp("", "ledger-bench-"); benchErr != nil {
			return
		}
		benchStore, benchErr = sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(benchDir, "ledger.db"), Synchronous: "NORMAL"}, nil)
		if benchErr != nil {
			return
		}
		start := time.Now()
		_, benchErr = loggen.Generate(ctx, benchStore, loggen.Config{
			Events: *benchEvents, Users: 100_000, Targets: 50_000, Seed: 1,
		})
		b.Logf("generated %d events in %s", *benchEvents, time.Since(start).Round(time.Millisecond))
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchStore
}

func openEmpty(b *testing.B) *projections.Set {
	b.Helper()
	s, err := projections.Open(context.Background(), projections.Config{
		Path: filepath.Join(b.TempDir(), "views"), Kinds: domain.MustKindSet(domain.DefaultKinds...),
	}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkRebuild rebuilds all four projections from the generated log
// into an empty views file: the path of `ledger rebuild`.
func BenchmarkRebuild(b *testing.B) {
	store := generated(b)
	ctx := context.Background()
	var total time.Duration
	resetPeakRSS()
	cpu0 := cpuTime()
	for b.Loop() {
		b.StopTimer()
		s := openEmpty(b)
		b.StartTimer()
		start := time.Now()
		phase := ""
		progress := func(p projections.Progress) {
			if p.Phase != phase {
				phase = p.Phase
				b.Logf("%s at %s", phase, time.Since(start).Round(time.Millisecond))
			}
		}
		if err := s.Rebuild(ctx, store, nil, progress); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(*benchEvents)*float64(b.N)/total.Seconds(), "events/s")
	b.ReportMetric(peakRSS(), "peak-RSS-MB")
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
}

// BenchmarkCatchUp applies the generated log to all four projections the
// way the live pipeline does: read batches of 1000 from the store, one
// transaction per projection per batch, per-event announcements on (one
// listener).
func BenchmarkCatchUp(b *testing.B) {
	store := generated(b)
	ctx := context.Background()
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		s := openEmpty(b)
		s.OnApplied(func(projections.AppliedEvent) {})
		b.StartTimer()
		start := time.Now()
		catchUp(b, ctx, s, store, 5000)
		total += time.Since(start)
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(*benchEvents)*float64(b.N)/total.Seconds(), "events/s")
}

func catchUp(b *testing.B, ctx context.Context, s *projections.Set, store domain.EventStore, batch int) {
	var after int64
	buf := make([]domain.Event, 0, batch)
	for {
		buf, err := domain.AppendEvents(buf[:0], store.ReadEvents(ctx, domain.EventFilter{After: after, Limit: batch}))
		if err != nil {
			b.Fatal(err)
		}
		if len(buf) == 0 {
			return
		}
		for _, name := range s.Names() {
			if err := s.Apply(ctx, name, buf); err != nil {
				b.Fatal(err)
			}
		}
		after = buf[len(buf)-1].Position
	}
}

// cpuTime returns the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// resetPeakRSS makes peakRSS measure from now on (Linux), so that the
// log's generation does not count.
func resetPeakRSS() {
	runtime.GC()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSS returns the process's peak resident set in MiB (Linux), or the
// Go heap's total obtained from the OS elsewhere.
func peakRSS() float64 {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
				return kb / 1024
			}
		}
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.Sys) / (1 << 20)
}

// BenchmarkBuildAsOf builds all projections at the head into a new file
// (no journal, no sync): the path of `ledger asof` and `ledger verify`.
func BenchmarkBuildAsOf(b *testing.B) {
	store := generated(b)
	ctx := context.Background()
	kinds := domain.MustKindSet(domain.DefaultKinds...)
	var total time.Duration
	for b.Loop() {
		path := filepath.Join(b.TempDir(), "asof")
		start := time.Now()
		phase := ""
		progress := func(p projections.Progress) {
			if p.Phase != phase {
				phase = p.Phase
				b.Logf("%s at %s", phase, time.Since(start).Round(time.Millisecond))
			}
		}
		if _, err := projections.BuildAsOf(ctx, store, path, kinds, projections.AsOf{}, progress, nil); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(*benchEvents)*float64(b.N)/total.Seconds(), "events/s")
}

// BenchmarkApplySmallBatches applies batches of a few events, as a server
// at a moderate load does (a batch per group commit), to a views file
// holding 100,000 interactions: the applier's cost per batch.
func BenchmarkApplySmallBatches(b *testing.B) {
	for _, size := range []int{1, 5, 20} {
		b.Run("events="+strconv.Itoa(size), func(b *testing.B) {
			s := openWith(b, "", -1)
			rng := rand.New(rand.NewPCG(3, 3))
			l, on := newEventLog(b), map[string]bool{}
			next := func() {
				user, target := "u"+strconv.Itoa(rng.IntN(100_000)), "article/t"+strconv.Itoa(rng.IntN(10_000))
				key := user + " " + target
				on[key] = !on[key]
				l.add(user, target, like, on[key])
			}
			for range 100_000 {
				next()
			}
			if err := s.ApplyAll(context.Background(), s.Names(), l.events); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				from := len(l.events)
				for range size {
					next()
				}
				// b.Context can end, as a server's batches' contexts can.
				if err := s.ApplyAll(b.Context(), s.Names(), l.events[from:]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
