package postgres_test

import (
	"strconv"
	"testing"

	"github.com/interactionledger/ledger/adapters/postgres"
	"github.com/interactionledger/ledger/adapters/postgres/pgtest"
)

// BenchmarkAppend compares, per number of appenders, the store (head row
// with group commit), the same head row with one append per transaction
// (MaxBatch 1), and the bigserial + xid8 alternative without a head row.
// Run with a fixed count, e.g. -benchtime 5000x: each iteration is one
// append.
func BenchmarkAppend(b *testing.B) {
	url := pgtest.URL(b)
	for _, appenders := range []int{1, 16, 64, 256} {
		name := "appenders=" + strconv.Itoa(appenders)
		b.Run("head-row-group-commit/"+name, func(b *testing.B) {
			res, err := postgres.MeasureAppend(b.Context(), postgres.Config{URL: url, Schema: pgtest.Schema(b)}, appenders, b.N)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(res.PerSecond, "appends/s")
			b.ReportMetric(res.MeanBatch(), "appends/commit")
		})
		b.Run("head-row-one-per-tx/"+name, func(b *testing.B) {
			res, err := postgres.MeasureAppend(b.Context(), postgres.Config{URL: url, Schema: pgtest.Schema(b), MaxBatch: 1}, appenders, b.N)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(res.PerSecond, "appends/s")
		})
		b.Run("bigserial-xid8-one-per-tx/"+name, func(b *testing.B) {
			res, err := postgres.MeasureSequenceInsert(b.Context(), url, pgtest.Schema(b), appenders, b.N)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(res.PerSecond, "appends/s")
		})
	}
}
