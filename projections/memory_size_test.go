package projections

import (
	"runtime"
	"strconv"
	"testing"
)

// BenchmarkMemoryModelSize reports the heap the memory model takes per
// row (targets, users, viewer entries and actors counted alike) for 1M
// likes (a viewer entry and an actor each) over 100k users and 10k targets,
// the bench http universe.
func BenchmarkMemoryModelSize(b *testing.B) {
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		t := newMemTables()
		for i := range 1_000_000 {
			u := t.user("u" + strconv.Itoa(i%100_000))
			tg := t.target(2, "article", "a"+strconv.Itoa(i/100_000+10*(i%1000)))
			t.setFlags(memPair{u, tg}, 1)
			t.addActor(memActor{u, tg, 0}, int64(i+1), int64(i))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(t.rows), "bytes/row")
		b.ReportMetric(float64(t.rows), "rows")
		runtime.KeepAlive(t)
	}
}
