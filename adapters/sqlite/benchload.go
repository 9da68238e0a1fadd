package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/interactionledger/ledger/adapters/storebench"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/walcheckpoint"
	"github.com/mattn/go-sqlite3"
)

// MeasureAppend creates a store file in dir holding prefill events (one
// per stream, written in large transactions), opens it durably
// (synchronous=FULL) and times n further one-event appends to new random
// streams (storebench's workload), made by appenders concurrent goroutines
// through the group-committing writer. It returns domain.ErrInvalidInput
// for bad arguments, the store's errors (domain.ErrUnavailable, ...) and
// ctx's error.
func MeasureAppend(ctx context.Context, dir string, prefill, appenders, n int) (storebench.Result, error) {
	return MeasureAppendConfig(ctx, Config{Path: filepath.Join(dir, "bench-append.db")}, prefill, appenders, n)
}

// MeasureAppendConfig is MeasureAppend on a store opened with cfg (whose
// OnCommit it replaces), for tuning batch size and linger. Errors are
// MeasureAppend's.
func MeasureAppendConfig(ctx context.Context, cfg Config, prefill, appenders, n int) (storebench.Result, error) {
	reqs, err := prefilled(ctx, cfg.Path, prefill, n)
	if err != nil {
		return storebench.Result{}, err
	}
	var commits atomic.Int64
	cfg.OnCommit = func(st CommitStats) {
		if st.Err == nil {
			commits.Add(1)
		}
	}
	s, err := Open(ctx, cfg, nil)
	if err != nil {
		return storebench.Result{}, err
	}
	defer s.Close()
	res, err := storebench.Run(ctx, s, appenders, reqs)
	if err != nil {
		return storebench.Result{}, err
	}
	res.Commits = int(commits.Load())
	return res, s.Close()
}

// MeasureRawInsert is the baseline without the store: it creates a file
// with the store's schema in dir holding prefill events, as MeasureAppend
// does, and times n further appends' rows (a new stream and its event, as
// the store writes them) inserted straight with prepared statements on one
// durable connection, perTx appends per transaction. It returns
// domain.ErrInvalidInput for bad arguments, domain.ErrUnavailable on
// storage faults, and ctx's error.
func MeasureRawInsert(ctx context.Context, dir string, prefill, perTx, n int) (storebench.Result, error) {
	if perTx < 1 {
		return storebench.Result{}, fmt.Errorf("measure raw insert: perTx must be >= 1: %w", domain.ErrInvalidInput)
	}
	path := filepath.Join(dir, "bench-raw.db")
	reqs, err := prefilled(ctx, path, prefill, n)
	if err != nil {
		return storebench.Result{}, err
	}
	db, err := durableDB(ctx, path)
	if err != nil {
		return storebench.Result{}, err
	}
	defer db.Close()
	start := time.Now()
	commits, err := rawInsert(ctx, db, reqs, int64(prefill), perTx, DefaultTargetIndexEvery)
	if err != nil {
		return storebench.Result{}, fmt.Errorf("measure raw insert: %w", translate(err))
	}
	elapsed := time.Since(start)
	return storebench.Result{Appends: n, Elapsed: elapsed, PerSecond: float64(n) / elapsed.Seconds(),
		Commits: commits}, db.Close()
}

// PairConfig is what MeasurePair measures.
type PairConfig struct {
	Prefill   int // events in each file before the clock starts
	Appends   int // appends of each side
	Round     int // appends per turn
	Appenders int // the store's concurrent appenders
	PerTx     int // the raw side's appends per transaction
}

// MeasurePair times the store's appends, made by c.Appenders concurrent
// goroutines, against raw inserts of the same rows, c.PerTx appends per
// transaction (MeasureRawInsert's baseline), each on a file in dir
// pre-filled with the same c.Prefill events, interleaved in turns of
// c.Round appends, the side that goes first swapped every turn: both
// sides then see the same machine, however its load drifts, and logs of
// the same size. The store stays open between its turns; each of its turns
// starts its appenders afresh, so the last commits of a turn hold fewer
// appends. It returns the baseline's result and the store's,
// domain.ErrInvalidInput for bad arguments, the store's errors and ctx's
// error.
func MeasurePair(ctx context.Context, dir string, c PairConfig) (raw, ledger storebench.Result, err error) {
	if c.Round < 1 || c.Appenders < 1 || c.PerTx < 1 {
		return raw, ledger, fmt.Errorf("measure pair: round, appenders and rows per transaction must be >= 1: %w",
			domain.ErrInvalidInput)
	}
	rawPath, path := filepath.Join(dir, "bench-raw.db"), filepath.Join(dir, "bench-append.db")
	rawReqs, err := prefilled(ctx, rawPath, c.Prefill, c.Appends)
	if err != nil {
		return raw, ledger, err
	}
	reqs, err := prefilled(ctx, path, c.Prefill, c.Appends)
	if err != nil {
		return raw, ledger, err
	}
	db, err := durableDB(ctx, rawPath)
	if err != nil {
		return raw, ledger, err
	}
	defer db.Close()
	ri, err := newRawInserter(ctx, db, DefaultTargetIndexEvery)
	if err != nil {
		return raw, ledger, translate(err)
	}
	defer ri.close()
	var commits [2]int64
	var storeCommits atomic.Int64
	s, err := Open(ctx, Config{Path: path, OnCommit: func(st CommitStats) {
		if st.Err == nil {
			storeCommits.Add(1)
		}
	}}, nil)
	if err != nil {
		return raw, ledger, err
	}
	defer s.Close()
	sides := []func(from, to int) error{
		func(from, to int) error {
			n, err := ri.insert(ctx, rawReqs[from:to], int64(c.Prefill+from), c.PerTx)
			commits[0] += int64(n)
			return translate(err)
		},
		func(from, to int) error {
			_, err := storebench.Run(ctx, s, c.Appenders, reqs[from:to])
			return err
		},
	}
	var spent [2]time.Duration
	for from := 0; from < c.Appends; from += c.Round {
		to := min(from+c.Round, c.Appends)
		for k := range 2 {
			side := k ^ (from / c.Round % 2)
			start := time.Now()
			if err := sides[side](from, to); err != nil {
				return raw, ledger, fmt.Errorf("measure pair: %w", err)
			}
			spent[side] += time.Since(start)
		}
	}
	commits[1] = storeCommits.Load()
	results := [2]storebench.Result{}
	for i := range results {
		results[i] = storebench.Result{Appends: c.Appends, Elapsed: spent[i],
			PerSecond: float64(c.Appends) / spent[i].Seconds(), Commits: int(commits[i])}
	}
	return results[0], results[1], errors.Join(ri.close(), db.Close(), s.Close())
}

// durableDB opens the file at path, which holds the store's schema, with
// the store's durable connection settings, on one connection that, like
// the store's writer, never checkpoints inside a commit (a rawInserter's
// checkpointer does).
func durableDB(ctx context.Context, path string) (*sql.DB, error) {
	s, err := Open(ctx, Config{Path: path}, nil)
	if err != nil {
		return nil, err
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	db, err := sql.Open(driverName, s.dsn(false))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	if _, err := db.ExecContext(ctx, walcheckpoint.DisableAuto); err != nil {
		return nil, errors.Join(translate(err), db.Close())
	}
	return db, nil
}

// prefilled creates the store file at path with the first prefill of
// prefill+n workload appends, and returns the other n, built before any
// clock starts.
func prefilled(ctx context.Context, path string, prefill, n int) ([]domain.AppendRequest, error) {
	if prefill < 0 || n < 1 {
		return nil, fmt.Errorf("bench: prefill must be >= 0 and appends >= 1: %w", domain.ErrInvalidInput)
	}
	reqs, err := storebench.Requests(prefill + n)
	if err != nil {
		return nil, err
	}
	if err := fill(ctx, path, reqs[:prefill]); err != nil {
		return nil, err
	}
	return reqs[prefill:], nil
}

// rawInsert inserts reqs' rows after position (and stream key) before,
// perTx appends per transaction, on one connection of db, indexing targets
// every indexEvery new streams (newRawInserter).
func rawInsert(ctx context.Context, db *sql.DB, reqs []domain.AppendRequest, before int64, perTx int, indexEvery int64) (int, error) {
	ri, err := newRawInserter(ctx, db, indexEvery)
	if err != nil {
		return 0, err
	}
	defer ri.close()
	return ri.insert(ctx, reqs, before, perTx)
}

// rawInserter holds a connection and the store's own prepared append
// statements (hotStmts), run on the driver connection as the writer runs
// them: the baseline pays the same driver path as the store, and none of
// its logic (no lookups, checks, data version or idempotency). Its
// statements run under a context that cannot be cancelled, as the store's
// writer does: the driver watches a cancellable context with a goroutine
// per statement, which would understate the ceiling.
//
// Like the writer, it adds the new streams to the target index in the
// commit that leaves indexEvery of them waiting (DefaultTargetIndexEvery
// on the store's schema; 0 for a layout of BenchmarkRawLayouts that has no
// such index); through is the index's watermark. Like the store, it has a
// checkpointer whose checkpoints it finishes between two transactions
// (finishing).
type rawInserter struct {
	ctx                 context.Context
	conn                *sql.Conn
	hot                 hotStmts
	indexEvery, through int64
	ckpt                *walcheckpoint.Checkpointer
	finishing           chan chan finished
}

// finished is what a finish run by insert returns.
type finished struct {
	copied int64
	err    error
}

func newRawInserter(ctx context.Context, db *sql.DB, indexEvery int64) (*rawInserter, error) {
	ri := &rawInserter{ctx: context.WithoutCancel(ctx), indexEvery: indexEvery, finishing: make(chan chan finished)}
	var err error
	if ri.conn, err = db.Conn(ri.ctx); err != nil {
		return nil, err
	}
	var path string
	err = ri.conn.Raw(func(dc any) error {
		path = dc.(*sqlite3.SQLiteConn).GetFilename("main")
		return ri.hot.prepare(ri.ctx, dc.(driver.Conn))
	})
	if err != nil {
		return nil, errors.Join(err, ri.close())
	}
	ri.ckpt, err = walcheckpoint.Open(ri.ctx, driverName, path, Config{}.withDefaults().params(false),
		walcheckpoint.Config{Pages: walAutocheckpoint, Finish: ri.finish})
	if err != nil {
		return nil, errors.Join(err, ri.close())
	}
	if indexEvery == 0 {
		return ri, nil
	}
	err = ri.conn.QueryRowContext(ri.ctx, `SELECT through FROM stream_targets_through`).Scan(&ri.through)
	if err != nil {
		return nil, errors.Join(err, ri.close())
	}
	return ri, nil
}

// finish is the raw baseline's walcheckpoint.Finish: insert runs
// walcheckpoint.Query before its next transaction (finishCheckpoint).
func (ri *rawInserter) finish(ctx context.Context) (int64, error) {
	done := make(chan finished, 1)
	select {
	case ri.finishing <- done:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case f := <-done:
		return f.copied, f.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// finishCheckpoint runs a finish the checkpointer asks for, if any, on the
// driver connection dc between two transactions.
func (ri *rawInserter) finishCheckpoint(dc any) {
	select {
	case done := <-ri.finishing:
		rows, err := dc.(driver.QueryerContext).QueryContext(ri.ctx, walcheckpoint.Query, nil)
		if err != nil {
			done <- finished{err: err}
			return
		}
		row := make([]driver.Value, 3)
		err = errors.Join(rows.Next(row), rows.Close())
		copied, _ := row[2].(int64)
		done <- finished{copied: copied, err: err}
	default:
	}
}

func (ri *rawInserter) close() error {
	var err error
	if ri.ckpt != nil {
		err = ri.ckpt.Close()
	}
	return errors.Join(err, ri.conn.Raw(func(any) error { return ri.hot.close() }), ri.conn.Close())
}

// insert inserts reqs' rows after position (and stream key) before, perTx
// appends per transaction; outer is checked between transactions.
func (ri *rawInserter) insert(outer context.Context, reqs []domain.AppendRequest, before int64, perTx int) (int, error) {
	commits := 0
	err := ri.conn.Raw(func(dc any) error {
		for i, req := range reqs {
			if i%perTx == 0 {
				if err := outer.Err(); err != nil {
					return err
				}
				ri.finishCheckpoint(dc)
				if _, err := ri.hot.exec(ri.ctx, ri.hot.begin); err != nil {
					return err
				}
			}
			if err := ri.row(req, before+int64(i)+1); err != nil {
				return err
			}
			if (i+1)%perTx == 0 || i == len(reqs)-1 {
				if err := ri.index(before + int64(i) + 1); err != nil {
					return err
				}
				if _, err := ri.hot.exec(ri.ctx, ri.hot.commit); err != nil {
					return err
				}
				commits++
			}
		}
		return nil
	})
	return commits, err
}

// index indexes the streams up to key last once indexEvery of them wait.
func (ri *rawInserter) index(last int64) error {
	if ri.indexEvery == 0 {
		return nil
	}
	through, err := ri.hot.indexStreams(ri.ctx, ri.through, last, ri.indexEvery)
	ri.through = through
	return err
}

// row inserts one append's new stream and its event at pos, which is also
// the stream's key.
func (ri *rawInserter) row(req domain.AppendRequest, pos int64) error {
	e := req.Events[0]
	_, err := ri.hot.exec(ri.ctx, ri.hot.insertNewStream, pos, req.Stream.User.String(), req.Stream.Target.Type(),
		req.Stream.Target.ID(), int64(1), pos, "like")
	if err != nil {
		return err
	}
	_, err = ri.hot.query(ri.ctx, ri.hot.insertEvent, nil, pos, e.ID[:], pos, e.StreamVersion, string(e.Type),
		e.Kind.String(), e.OccurredAt.UnixNano(), time.Now().UnixNano(), `{"request_id":"`+strconv.FormatInt(pos-1, 10)+`"}`)
	return err
}

// ReadResult is one read measurement.
type ReadResult struct {
	Events    int
	Elapsed   time.Duration
	PerSecond float64
}

// MeasureRead writes n events (n distinct streams) to a fresh file in dir,
// then times reading them all back through ReadEvents: in one call when
// limit is 0 (a rebuild), else in pages of limit after the last position
// read (the projection tailer). It returns the store's errors.
func MeasureRead(ctx context.Context, dir string, n, limit int) (ReadResult, error) {
	if n < 1 || limit < 0 {
		return ReadResult{}, fmt.Errorf("measure read: n must be >= 1 and limit >= 0: %w", domain.ErrInvalidInput)
	}
	path := filepath.Join(dir, "bench-read.db")
	reqs, err := storebench.Requests(n)
	if err != nil {
		return ReadResult{}, err
	}
	if err := fill(ctx, path, reqs); err != nil {
		return ReadResult{}, err
	}
	s, err := Open(ctx, Config{Path: path}, nil)
	if err != nil {
		return ReadResult{}, err
	}
	defer s.Close()
	start := time.Now()
	read, after := 0, int64(0)
	for {
		got := 0
		for e, err := range s.ReadEvents(ctx, domain.EventFilter{After: after, Limit: limit}) {
			if err != nil {
				return ReadResult{}, err
			}
			got++
			after = e.Position
		}
		read += got
		if limit == 0 || got < limit {
			break
		}
	}
	elapsed := time.Since(start)
	if read != n {
		return ReadResult{}, fmt.Errorf("measure read: read %d events, wrote %d", read, n)
	}
	return ReadResult{Events: n, Elapsed: elapsed, PerSecond: float64(n) / elapsed.Seconds()}, s.Close()
}

// fill writes reqs (one-event appends to new streams) to a new store file
// at path, in large transactions, and closes it: its WAL is checkpointed
// into the file.
func fill(ctx context.Context, path string, reqs []domain.AppendRequest) error {
	s, err := Open(ctx, Config{Path: path, Synchronous: "NORMAL"}, nil)
	if err != nil {
		return err
	}
	if err := s.Close(); err != nil {
		return err
	}
	db, err := sql.Open(driverName, s.dsn(false))
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := rawInsert(ctx, db, reqs, 0, 10000, DefaultTargetIndexEvery); err != nil {
		return fmt.Errorf("fill %s: %w", path, translate(err))
	}
	return db.Close()
}
