package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/interactionledger/ledger/adapters/storebench"
	"github.com/interactionledger/ledger/domain"
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
	s, err := Open(ctx, Config{Path: path}, nil) // for its durable connection settings
	if err != nil {
		return storebench.Result{}, err
	}
	if err := s.Close(); err != nil {
		return storebench.Result{}, err
	}
	db, err := sql.Open("sqlite3", s.dsn(false))
	if err != nil {
		return storebench.Result{}, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	start := time.Now()
	commits, err := rawInsert(ctx, db, reqs, int64(prefill), perTx)
	if err != nil {
		return storebench.Result{}, fmt.Errorf("measure raw insert: %w", translate(err))
	}
	elapsed := time.Since(start)
	return storebench.Result{Appends: n, Elapsed: elapsed, PerSecond: float64(n) / elapsed.Seconds(),
		Commits: commits}, db.Close()
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

// rawInsert inserts reqs' rows after position (and stream key) before. It
// runs its statements under a context that cannot be cancelled,
// as the store's writer does: the driver watches a cancellable context with
// a goroutine per statement, which would understate the ceiling. ctx is
// checked between transactions.
func rawInsert(ctx context.Context, db *sql.DB, reqs []domain.AppendRequest, before int64, perTx int) (int, error) {
	outer := ctx
	ctx = context.WithoutCancel(ctx)
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	insStream, err := conn.PrepareContext(ctx, `INSERT INTO streams
		(stream_key, user_id, target_type, target_id, version, last_position, state)
		VALUES (?, ?, ?, ?, 1, ?, 'like')`)
	if err != nil {
		return 0, err
	}
	defer insStream.Close()
	insEvent, err := conn.PrepareContext(ctx, sqlInsertEvent)
	if err != nil {
		return 0, err
	}
	defer insEvent.Close()
	commits := 0
	for i, req := range reqs {
		if i%perTx == 0 {
			if err := outer.Err(); err != nil {
				return commits, err
			}
			if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
				return commits, err
			}
		}
		e := req.Events[0]
		pos := before + int64(i) + 1
		if _, err := insStream.ExecContext(ctx, pos, req.Stream.User.String(), req.Stream.Target.Type(),
			req.Stream.Target.ID(), pos); err != nil {
			return commits, err
		}
		if _, err := insEvent.ExecContext(ctx, pos, e.ID[:], pos, e.StreamVersion, string(e.Type),
			e.Kind.String(), e.OccurredAt.UnixNano(), time.Now().UnixNano(), `{"request_id":"`+strconv.Itoa(i)+`"}`); err != nil {
			return commits, err
		}
		if (i+1)%perTx == 0 || i == len(reqs)-1 {
			if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
				return commits, err
			}
			commits++
		}
	}
	return commits, nil
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
	db, err := sql.Open("sqlite3", s.dsn(false))
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := rawInsert(ctx, db, reqs, 0, 10000); err != nil {
		return fmt.Errorf("fill %s: %w", path, translate(err))
	}
	return db.Close()
}
