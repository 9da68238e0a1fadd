package sqlite

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/storebench"
	"github.com/interactionledger/ledger/adapters/storetest"
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
// take a random page per new stream: the current layout (the store's own
// schema, 0003: its two stream indexes stream_targets and stream_users
// built by the store's statements in the commit that leaves
// DefaultTargetIndexEvery new streams waiting, as the writer does), the
// first schema (0001: UNIQUE (user, target) and the target index
// streams_target on streams), the second without its deferred target index
// (0002's UNIQUE (user, target) on streams alone, a bound of 0002), with
// one identity index ordered by target (it would serve the writer,
// Snapshot and reads by target; a read by user alone would scan the
// streams), and without any stream index (an upper bound: no read by user
// or target would be indexed). The events table is the current one in all
// of them; in all, the new stream's insert looks for it in stream_users
// (empty but in the current layout). streams empty means the store's
// schema; indexEvery is the raw inserter's (0: no stream indexes to fill).
var rawLayouts = []struct {
	name, streams string
	indexEvery    int64
}{
	{"current", "", DefaultTargetIndexEvery},
	{"0001-streams-target", streamsTable + `, UNIQUE (user_id, target_type, target_id));
		CREATE INDEX streams_target ON streams (target_type, target_id);`, 0},
	{"0002-unique-identity", streamsTable + `, UNIQUE (user_id, target_type, target_id));`, 0},
	{"target-first-identity", streamsTable + `, UNIQUE (target_type, target_id, user_id));`, 0},
	{"no-identity-index", streamsTable + `);`, 0},
}

const streamsTable = `CREATE TABLE streams (stream_key INTEGER PRIMARY KEY, user_id TEXT NOT NULL,
	target_type TEXT NOT NULL, target_id TEXT NOT NULL, version INTEGER NOT NULL,
	last_position INTEGER NOT NULL, state TEXT NOT NULL`

// rawLayoutTables are the events table and the (empty) tables the store's
// prepared statements name, which the raw inserter prepares in every
// layout.
const rawLayoutTables = `CREATE TABLE events (position INTEGER PRIMARY KEY, id BLOB NOT NULL,
	stream_key INTEGER NOT NULL, stream_version INTEGER NOT NULL, type TEXT NOT NULL, kind TEXT NOT NULL,
	occurred_at INTEGER NOT NULL, recorded_at INTEGER NOT NULL, metadata TEXT,
	UNIQUE (stream_key, stream_version));
	CREATE UNIQUE INDEX events_id ON events (id);
	CREATE TABLE stream_targets (target_type TEXT NOT NULL, target_id TEXT NOT NULL, stream_key INTEGER NOT NULL,
	PRIMARY KEY (target_type, target_id, stream_key)) WITHOUT ROWID;
	CREATE TABLE stream_targets_through (one INTEGER PRIMARY KEY, through INTEGER NOT NULL);
	CREATE TABLE stream_users (user_id TEXT NOT NULL, target_type TEXT NOT NULL, target_id TEXT NOT NULL,
	stream_key INTEGER NOT NULL, PRIMARY KEY (user_id, target_type, target_id)) WITHOUT ROWID;`

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
				db := rawLayoutDB(b, filepath.Join(b.TempDir(), "layout.db"), l.streams)
				defer db.Close()
				reqs, err := storebench.Requests(prefill + b.N)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := rawInsert(b.Context(), db, reqs[:prefill], 0, 10_000, l.indexEvery); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				if _, err := rawInsert(b.Context(), db, reqs[prefill:], prefill, perTx, l.indexEvery); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
			})
		}
	}
}

// rawLayoutDB creates the file at path with streams and rawLayoutTables, or
// with the store's own schema when streams is empty, and opens it durably
// on one connection.
func rawLayoutDB(b *testing.B, path, streams string) *sql.DB {
	if streams == "" {
		db, err := durableDB(b.Context(), path)
		if err != nil {
			b.Fatal(err)
		}
		return db
	}
	db, err := sql.Open(driverName, sqlitedsn.File(path, url.Values{"_synchronous": {"FULL"},
		"_journal_mode": {"WAL"}, "_txlock": {"immediate"}}))
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(streams + rawLayoutTables); err != nil {
		b.Fatal(err)
	}
	return db
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
		reportCPU(b, start)
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
		ri, err := newRawInserter(b.Context(), db, DefaultTargetIndexEvery)
		if err != nil {
			b.Fatal(err)
		}
		defer ri.close()
		b.ResetTimer()
		start := processCPU(b)
		if _, err := ri.insert(b.Context(), reqs, 0, 1); err != nil {
			b.Fatal(err)
		}
		reportCPU(b, start)
	})
}

// reportCPU reports the process's CPU since start per iteration, as
// cpu-us/op.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(processCPU(b)-start)/float64(time.Microsecond)/float64(b.N), "cpu-us/op")
}

// processCPU is the process's user and system time so far.
func processCPU(b *testing.B) time.Duration {
	cpu, err := storebench.ProcessCPU()
	if err != nil {
		b.Fatal(err)
	}
	return cpu
}

// BenchmarkReadByTarget is a history page of one target, and of one user
// (limit 100, as the HTTP API's), on a log of 100,000 streams over 10,000
// targets and 100,000 users (storebench's workload), ~10 events a target
// and ~1 a user: with every stream in the stream indexes, and with the most
// streams that can wait outside them (DefaultTargetIndexEvery-1), which
// each read scans by key.
func BenchmarkReadByTarget(b *testing.B) {
	const streams = 100_000
	for _, waiting := range []int{0, 1023, DefaultTargetIndexEvery - 1} {
		b.Run("waiting="+strconv.Itoa(waiting), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "read.db")
			reqs, err := storebench.Requests(streams)
			if err != nil {
				b.Fatal(err)
			}
			indexed := streams - waiting
			if err := fill(b.Context(), path, reqs[:indexed-1]); err != nil {
				b.Fatal(err)
			}
			appendWith(b, path, 1, reqs[indexed-1:indexed]) // indexes every stream so far
			appendWith(b, path, 1<<30, reqs[indexed:])      // leaves these waiting
			checkpoint(b, path)
			s := MustOpen(b, Config{Path: path, ReadOnly: true})
			for _, by := range []string{"target", "user"} {
				b.Run("by="+by, func(b *testing.B) {
					for i := range b.N {
						f := domain.EventFilter{TargetType: "article", TargetID: strconv.Itoa(i * 7919 % storebench.Targets), Limit: 100}
						if by == "user" {
							f = domain.EventFilter{User: storetest.MustUser(b, "user-"+strconv.Itoa(i*7919%storebench.Users)), Limit: 100}
						}
						for _, err := range s.ReadEvents(b.Context(), f) {
							if err != nil {
								b.Fatal(err)
							}
						}
					}
				})
			}
		})
	}
}

// appendWith appends reqs to the store at path, opened with indexEvery,
// from 64 appenders.
func appendWith(b *testing.B, path string, indexEvery int, reqs []domain.AppendRequest) {
	s, err := Open(b.Context(), Config{Path: path, TargetIndexEvery: indexEvery, Synchronous: "NORMAL"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if len(reqs) > 0 {
		if _, err := storebench.Run(b.Context(), s, 64, reqs); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
}

// checkpoint copies the WAL of the file at path into it and empties it,
// so that reads measured on it do not depend on how its WAL was left.
func checkpoint(b *testing.B, path string) {
	db, err := durableDB(b.Context(), path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(b.Context(), "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSnapshot is the one-row read every write makes before it
// appends (domain.Ledger.Set), on a log of 100,000 streams: with another
// append committed before each read, as on a server taking writes (SQLite
// then drops the read connection's page cache and reads the pages again),
// and with none, the cache warm. The appends are outside the timer.
func BenchmarkSnapshot(b *testing.B) {
	const streams = 100_000
	reqs, err := storebench.Requests(streams + 100_000)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "snap.db")
	if err := fill(b.Context(), path, reqs[:streams]); err != nil {
		b.Fatal(err)
	}
	s, err := Open(b.Context(), Config{Path: path, Synchronous: "NORMAL"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	next := streams
	for _, writes := range []bool{true, false} {
		b.Run("after-append="+strconv.FormatBool(writes), func(b *testing.B) {
			for i := range b.N {
				if writes {
					if next == len(reqs) {
						b.Fatalf("out of fresh streams after %d appends: run with a smaller -benchtime", next-streams)
					}
					b.StopTimer()
					if _, err := s.Append(b.Context(), reqs[next]); err != nil {
						b.Fatal(err)
					}
					next++
					b.StartTimer()
				}
				if _, err := s.Snapshot(b.Context(), reqs[i*7919%streams].Stream); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkToggle is the append an HTTP write makes on a stream it has
// written before: one event that toggles a kind, at the stream's version,
// with an idempotency key (so the writer looks the key up, updates the
// stream's snapshot and records the key), lone, over 1,000 streams the
// writer knows. Run with -benchmem: cpu-us/op is the process's CPU per
// append.
func BenchmarkToggle(b *testing.B) {
	const streams = 1000
	reqs, err := storebench.Requests(streams)
	if err != nil {
		b.Fatal(err)
	}
	s := MustOpen(b, Config{Path: filepath.Join(b.TempDir(), "ledger.db")})
	for _, r := range reqs {
		if _, err := s.Append(b.Context(), r); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := processCPU(b)
	for i := range b.N {
		k := i % streams
		reqs[k] = toggled(reqs[k])
		if _, err := s.Append(b.Context(), reqs[k]); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, start)
}

// toggled returns the append after prev (one event) on its stream: the
// event's opposite, at the next version, with an idempotency key of its
// own, as domain.Ledger.Set builds it.
func toggled(prev domain.AppendRequest) domain.AppendRequest {
	e := prev.Events[0]
	e.ID, e.OccurredAt = domain.NewEventID(), time.Now()
	e.StreamVersion++
	e.Type = domain.EventAdded
	if prev.Events[0].Type == domain.EventAdded {
		e.Type = domain.EventCancelled
	}
	state := domain.Evolve(prev.State, e)
	return domain.AppendRequest{Stream: prev.Stream, ExpectedVersion: prev.Events[0].StreamVersion,
		Events: []domain.Event{e}, State: state,
		Idempotency: &domain.IdempotencyRecord{User: e.User, Key: e.ID.String(), RequestHash: "bench",
			Outcome: domain.Outcome{Changed: true, Active: state.Active(e.Kind), State: state,
				StreamVersion: e.StreamVersion}}}
}

// BenchmarkIdempotency is the read a write with an idempotency key makes
// before it decides (domain.Ledger.Set; the browser client sends a key
// with every write): a stored key, looked up under a context that can end,
// as a request's. cpu-us/op is the process's CPU per read.
func BenchmarkIdempotency(b *testing.B) {
	const streams, keyed = 1000, 300
	reqs, err := storebench.Requests(streams)
	if err != nil {
		b.Fatal(err)
	}
	s := MustOpen(b, Config{Path: filepath.Join(b.TempDir(), "ledger.db")})
	for i := range reqs {
		if _, err := s.Append(b.Context(), reqs[i]); err != nil {
			b.Fatal(err)
		}
		if i < keyed { // a second append, with a key
			reqs[i] = toggled(reqs[i])
			if _, err := s.Append(b.Context(), reqs[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	b.ResetTimer()
	start := processCPU(b)
	for i := range b.N {
		rec := reqs[i%keyed].Idempotency
		if _, ok, err := s.Idempotency(ctx, rec.User, rec.Key); err != nil || !ok {
			b.Fatalf("key %q: found %v, %v", rec.Key, ok, err)
		}
	}
	reportCPU(b, start)
}
