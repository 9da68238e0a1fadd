package sqlite

import (
	"database/sql"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/storebench"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/sqlitedsn"
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

// rawLayouts are the log's stream table with and without the indexes that
// take a random page per new stream: the current layout (0001), without
// the target index, with one identity index ordered by target (it serves
// the writer, Snapshot and reads by target; a read by user alone would scan
// the streams), without any stream identity index (an upper bound: no read
// by user or target would be indexed), and that last layout with the
// identity and target indexes kept in a table of their own and built
// behind the appends (deferred): after every deferEvery appends, one
// transaction inserts the new streams in key order (its build statement,
// whose argument is the last stream key it had). That one prices the
// deferred index alone; the reads it would need from the writer's memory
// are not in it. The events table is the current one in all of them.
var rawLayouts = []struct{ name, streams, build string }{
	{"current", streamsTable + `, UNIQUE (user_id, target_type, target_id));
		CREATE INDEX streams_target ON streams (target_type, target_id);`, ""},
	{"no-target-index", streamsTable + `, UNIQUE (user_id, target_type, target_id));`, ""},
	{"target-first-identity", streamsTable + `, UNIQUE (target_type, target_id, user_id));`, ""},
	{"no-identity-index", streamsTable + `);`, ""},
	{"deferred-identity", streamsTable + `);
		CREATE TABLE stream_identity (stream_key INTEGER PRIMARY KEY, user_id TEXT NOT NULL,
		target_type TEXT NOT NULL, target_id TEXT NOT NULL, UNIQUE (user_id, target_type, target_id));
		CREATE INDEX stream_identity_target ON stream_identity (target_type, target_id);`,
		`INSERT INTO stream_identity SELECT stream_key, user_id, target_type, target_id FROM streams
		WHERE stream_key > ? ORDER BY user_id, target_type, target_id`},
}

// deferEvery is how many appends the deferred-identity layout writes
// between two builds of its identity table.
const deferEvery = 10_000

const streamsTable = `CREATE TABLE streams (stream_key INTEGER PRIMARY KEY, user_id TEXT NOT NULL,
	target_type TEXT NOT NULL, target_id TEXT NOT NULL, version INTEGER NOT NULL,
	last_position INTEGER NOT NULL, state TEXT NOT NULL`

const rawLayoutEvents = `CREATE TABLE events (position INTEGER PRIMARY KEY, id BLOB NOT NULL,
	stream_key INTEGER NOT NULL, stream_version INTEGER NOT NULL, type TEXT NOT NULL, kind TEXT NOT NULL,
	occurred_at INTEGER NOT NULL, recorded_at INTEGER NOT NULL, metadata TEXT,
	UNIQUE (stream_key, stream_version));
	CREATE UNIQUE INDEX events_id ON events (id);`

// BenchmarkRawLayouts is the raw ceiling of the stream table's layouts
// (rawLayouts): b.N appends' rows after 20,000 prefilled, durable
// (synchronous=FULL) and with the store's WAL checkpoint setting (its
// driver), 1000 and 256 appends per transaction (256: the most
// a group commit of 256 appenders can hold). Run with -benchtime 30000x.
func BenchmarkRawLayouts(b *testing.B) {
	const prefill = 20_000
	for _, l := range rawLayouts {
		for _, perTx := range []int{1000, 256} {
			b.Run(l.name+"/"+strconv.Itoa(perTx)+"-per-tx", func(b *testing.B) {
				path := filepath.Join(b.TempDir(), "layout.db")
				db, err := sql.Open(driverName, sqlitedsn.File(path, url.Values{"_synchronous": {"FULL"},
					"_journal_mode": {"WAL"}, "_txlock": {"immediate"}}))
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				db.SetMaxOpenConns(1)
				if _, err := db.Exec(l.streams + rawLayoutEvents); err != nil {
					b.Fatal(err)
				}
				reqs, err := storebench.Requests(prefill + b.N)
				if err != nil {
					b.Fatal(err)
				}
				if err := rawLayoutInsert(b, db, l.build, reqs[:prefill], 0, 10_000); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				if err := rawLayoutInsert(b, db, l.build, reqs[prefill:], prefill, perTx); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
			})
		}
	}
}

// rawLayoutInsert inserts reqs' rows after stream key before, perTx appends
// per transaction; with a build statement, in runs of deferEvery appends,
// each followed by one transaction of build.
func rawLayoutInsert(b *testing.B, db *sql.DB, build string, reqs []domain.AppendRequest, before, perTx int) error {
	step := len(reqs)
	if build != "" {
		step = deferEvery
	}
	for from := 0; from < len(reqs); from += step {
		to := min(from+step, len(reqs))
		if _, err := rawInsert(b.Context(), db, reqs[from:to], int64(before+from), perTx); err != nil {
			return err
		}
		if build == "" {
			continue
		}
		if _, err := db.ExecContext(b.Context(), "BEGIN IMMEDIATE; "+build+"; COMMIT", before+from); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkLoneCPU is a lone appender's process CPU per append (user +
// system, from rusage: cpu-us/op), durable, on a fresh log: the store
// against raw one-row transactions of the same rows (rawInserter). Run with
// -benchtime 3000x -benchmem, the two alternated several times: the
// machine's load moves both.
func BenchmarkLoneCPU(b *testing.B) {
	b.Run("ledger", func(b *testing.B) {
		reqs, err := storebench.Requests(b.N)
		if err != nil {
			b.Fatal(err)
		}
		s := MustOpen(b, Config{Path: filepath.Join(b.TempDir(), "ledger.db")})
		b.ResetTimer()
		start := processCPU(b)
		for _, req := range reqs {
			if _, err := s.Append(b.Context(), req); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(processCPU(b)-start)/float64(time.Microsecond)/float64(b.N), "cpu-us/op")
	})
	b.Run("raw-one-per-tx", func(b *testing.B) {
		reqs, err := storebench.Requests(b.N)
		if err != nil {
			b.Fatal(err)
		}
		db, err := durableDB(b.Context(), filepath.Join(b.TempDir(), "raw.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		ri, err := newRawInserter(b.Context(), db)
		if err != nil {
			b.Fatal(err)
		}
		defer ri.close()
		b.ResetTimer()
		start := processCPU(b)
		if _, err := ri.insert(b.Context(), reqs, 0, 1); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(processCPU(b)-start)/float64(time.Microsecond)/float64(b.N), "cpu-us/op")
	})
}

// processCPU is the process's user and system time so far.
func processCPU(b *testing.B) time.Duration {
	cpu, err := storebench.ProcessCPU()
	if err != nil {
		b.Fatal(err)
	}
	return cpu
}
