package sqlite

import (
	"strconv"
	"testing"
)

// Run with a fixed count, e.g. -benchtime 20000x: each iteration is one
// append, and the reported appends/s excludes building the workload.
func BenchmarkAppend(b *testing.B) {
	for _, appenders := range []int{1, 16, 256} {
		b.Run("appenders="+strconv.Itoa(appenders), func(b *testing.B) {
			res, err := MeasureAppend(b.Context(), b.TempDir(), 0, appenders, b.N)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(res.PerSecond, "appends/s")
			b.ReportMetric(res.MeanBatch(), "appends/commit")
		})
	}
}

func BenchmarkRawInsert(b *testing.B) {
	for _, c := range []struct {
		name  string
		perTx int
	}{{"one-per-tx", 1}, {"1000-per-tx", 1000}} {
		b.Run(c.name, func(b *testing.B) {
			res, err := MeasureRawInsert(b.Context(), b.TempDir(), 0, c.perTx, b.N)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(res.PerSecond, "appends/s")
		})
	}
}

// BenchmarkReadEvents reads b.N events: all at once (a rebuild) and in
// pages of 1000 (the projection tailer).
func BenchmarkReadEvents(b *testing.B) {
	for _, limit := range []int{0, 1000} {
		b.Run("limit="+strconv.Itoa(limit), func(b *testing.B) {
			res, err := MeasureRead(b.Context(), b.TempDir(), b.N, limit)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(res.PerSecond, "events/s")
		})
	}
}
