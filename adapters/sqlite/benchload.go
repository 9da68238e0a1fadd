package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/interactionledger/ledger/domain"
)

// Workload size: appends go to distinct random streams of BenchUsers ×
// BenchTargets.
const (
	BenchUsers   = 100_000
	BenchTargets = 10_000
)

// Result is one measurement.
type Result struct {
	Appends   int           // appends (or rows) written
	Elapsed   time.Duration // wall time of the writing alone
	PerSecond float64       // Appends / Elapsed
	Commits   int           // transactions committed
	Conflicts int           // appends retried after a version conflict
}

// MeanBatch is the mean number of appends per transaction.
func (r Result) MeanBatch() float64 {
	if r.Commits == 0 {
		return 0
	}
	return float64(r.Appends) / float64(r.Commits)
}

// String summarises r on one line.
func (r Result) String() string {
	return fmt.Sprintf("%d appends in %s: %.0f/s, %d commits (%.1f per commit), %d conflicts",
		r.Appends, r.Elapsed.Round(time.Millisecond), r.PerSecond, r.Commits, r.MeanBatch(), r.Conflicts)
}

// MeasureAppend opens a fresh durable (synchronous=FULL) store in dir and
// times n appends of one event each to random streams, made by appenders
// concurrent goroutines through the group-committing writer. It returns
// domain.ErrInvalidInput for bad arguments, the store's errors
// (domain.ErrUnavailable, ...) and ctx's error.
func MeasureAppend(ctx context.Context, dir string, appenders, n int) (Result, error) {
	return MeasureAppendConfig(ctx, Config{Path: filepath.Join(dir, "bench-append.db")}, appenders, n)
}

// MeasureAppendConfig is MeasureAppend on a store opened with cfg (whose
// OnCommit it replaces), for tuning batch size and linger. Errors are
// MeasureAppend's.
func MeasureAppendConfig(ctx context.Context, cfg Config, appenders, n int) (Result, error) {
	if appenders < 1 || n < 1 {
		return Result{}, fmt.Errorf("measure append: appenders and n must be >= 1: %w", domain.ErrInvalidInput)
	}
	reqs, err := benchRequests(n)
	if err != nil {
		return Result{}, err
	}
	var commits atomic.Int64
	cfg.OnCommit = func(st CommitStats) {
		if st.Err == nil {
			commits.Add(1)
		}
	}
	s, err := Open(ctx, cfg, nil)
	if err != nil {
		return Result{}, err
	}
	defer s.Close()
	var next, conflicts atomic.Int64
	errs := make(chan error, appenders)
	var wg sync.WaitGroup
	start := time.Now()
	for range appenders {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				if err := appendRetrying(ctx, s, reqs[i], &conflicts); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return Result{}, err
	}
	return Result{Appends: n, Elapsed: elapsed, PerSecond: float64(n) / elapsed.Seconds(),
		Commits: int(commits.Load()), Conflicts: int(conflicts.Load())}, s.Close()
}

// appendRetrying appends req; when two appends drew the same stream, the
// later one is re-based on the stream's snapshot.
func appendRetrying(ctx context.Context, s *EventStore, req domain.AppendRequest, conflicts *atomic.Int64) error {
	for {
		_, err := s.Append(ctx, req)
		if !errors.Is(err, domain.ErrVersionConflict) {
			return err
		}
		conflicts.Add(1)
		snap, err := s.Snapshot(ctx, req.Stream)
		if err != nil {
			return err
		}
		req.ExpectedVersion = snap.Version
		req.Events[0].StreamVersion = snap.Version + 1
		req.Events[0].ID = domain.NewEventID()
	}
}

// benchRequests builds n one-event appends to distinct random streams,
// before the clock starts.
func benchRequests(n int) ([]domain.AppendRequest, error) {
	like, err := domain.ParseKind("like")
	if err != nil {
		return nil, err
	}
	if n > BenchUsers*BenchTargets/2 {
		return nil, fmt.Errorf("bench: at most %d appends: %w", BenchUsers*BenchTargets/2, domain.ErrInvalidInput)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	reqs := make([]domain.AppendRequest, n)
	drawn := make(map[int]bool, n)
	for i := range reqs {
		// Each stream once: every append creates a stream, as most do on
		// a large site, and the raw baseline can insert it blindly.
		k := rng.IntN(BenchUsers * BenchTargets)
		for drawn[k] {
			k = rng.IntN(BenchUsers * BenchTargets)
		}
		drawn[k] = true
		user, err := domain.NewUserID("user-" + strconv.Itoa(k/BenchTargets))
		if err != nil {
			return nil, err
		}
		target, err := domain.NewTarget("article", strconv.Itoa(k%BenchTargets))
		if err != nil {
			return nil, err
		}
		e := domain.Event{ID: domain.NewEventID(), Type: domain.EventAdded, Kind: like,
			User: user, Target: target, StreamVersion: 1, OccurredAt: now,
			Metadata: domain.MustMetadata(map[string]string{domain.MetaRequestID: strconv.Itoa(i)})}
		reqs[i] = domain.AppendRequest{Stream: e.Stream(), Events: []domain.Event{e},
			State: domain.Evolve(domain.State{}, e)}
	}
	return reqs, nil
}

// MeasureRawInsert is the baseline without the store: it creates a fresh
// file with the store's schema in dir and times n appends' rows (a new
// stream and its event, as the store writes them) inserted straight with
// prepared statements on one connection, perTx appends per transaction.
// It returns domain.ErrInvalidInput for bad arguments, domain.ErrUnavailable
// on storage faults, and ctx's error.
func MeasureRawInsert(ctx context.Context, dir string, perTx, n int) (Result, error) {
	if perTx < 1 || n < 1 {
		return Result{}, fmt.Errorf("measure raw insert: perTx and n must be >= 1: %w", domain.ErrInvalidInput)
	}
	reqs, err := benchRequests(n)
	if err != nil {
		return Result{}, err
	}
	path := filepath.Join(dir, "bench-raw.db")
	s, err := Open(ctx, Config{Path: path}, nil)
	if err != nil {
		return Result{}, err
	}
	if err := s.Close(); err != nil {
		return Result{}, err
	}
	db, err := sql.Open("sqlite3", s.dsn(false))
	if err != nil {
		return Result{}, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	start := time.Now()
	commits, err := rawInsert(ctx, db, reqs, perTx)
	if err != nil {
		return Result{}, fmt.Errorf("measure raw insert: %w", translate(err))
	}
	elapsed := time.Since(start)
	return Result{Appends: n, Elapsed: elapsed, PerSecond: float64(n) / elapsed.Seconds(), Commits: commits}, nil
}

// rawInsert runs its statements under a context that cannot be cancelled,
// as the store's writer does: the driver watches a cancellable context with
// a goroutine per statement, which would understate the ceiling. ctx is
// checked between transactions.
func rawInsert(ctx context.Context, db *sql.DB, reqs []domain.AppendRequest, perTx int) (int, error) {
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
		pos := int64(i) + 1
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
	if err := fill(ctx, path, n); err != nil {
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

// fill writes n one-event streams to a new store file at path, in large
// transactions.
func fill(ctx context.Context, path string, n int) error {
	reqs, err := benchRequests(n)
	if err != nil {
		return err
	}
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
	if _, err := rawInsert(ctx, db, reqs, 10000); err != nil {
		return fmt.Errorf("fill %s: %w", path, translate(err))
	}
	return db.Close()
}
