package postgres_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/postgres"
	"github.com/interactionledger/ledger/adapters/postgres/pgtest"
	"github.com/interactionledger/ledger/adapters/storebench"
	"github.com/interactionledger/ledger/domain"
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

// BenchmarkAppendPopularTarget appends likes of new users to a target that
// has popularStreams streams already, on a streams table without
// statistics (autovacuum off, never analysed: a fresh import) and on an
// analysed one. Each append's stream is looked up by its (user, target)
// under the head lock. Run with a fixed count, e.g. -benchtime 3000x.
func BenchmarkAppendPopularTarget(b *testing.B) {
	url := pgtest.URL(b)
	for _, stats := range []string{"none", "analysed"} {
		for _, appenders := range []int{1, 64} {
			b.Run("stats="+stats+"/appenders="+strconv.Itoa(appenders), func(b *testing.B) {
				schema := pgtest.Schema(b)
				postgres.PrefillPopularTarget(b, url, schema, stats == "analysed")
				s, err := postgres.Open(b.Context(), postgres.Config{URL: url, Schema: schema}, nil)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				reqs := popularRequests(b, b.N)
				b.ResetTimer()
				res, err := storebench.Run(b.Context(), s, appenders, reqs)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(res.PerSecond, "appends/s")
			})
		}
	}
}

// popularRequests builds n likes of article/hot, each by a new user.
func popularRequests(tb testing.TB, n int) []domain.AppendRequest {
	tb.Helper()
	like, err := domain.ParseKind("like")
	if err != nil {
		tb.Fatal(err)
	}
	target, err := domain.NewTarget("article", "hot")
	if err != nil {
		tb.Fatal(err)
	}
	reqs := make([]domain.AppendRequest, n)
	for i := range reqs {
		user, err := domain.NewUserID("new-" + strconv.Itoa(i))
		if err != nil {
			tb.Fatal(err)
		}
		e := domain.Event{ID: domain.NewEventID(), Type: domain.EventAdded, Kind: like, User: user, Target: target,
			StreamVersion: 1, OccurredAt: time.Now()}
		reqs[i] = domain.AppendRequest{Stream: e.Stream(), Events: []domain.Event{e}, State: domain.Evolve(domain.State{}, e)}
	}
	return reqs
}
