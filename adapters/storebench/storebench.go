package storebench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/interactionledger/ledger/domain"
)

// Workload size: appends go to distinct random streams of Users × Targets.
const (
	Users   = 100_000
	Targets = 10_000
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

// Requests builds n one-event appends, each to a stream of its own drawn
// at random (seeded, so every run draws the same). It returns
// domain.ErrInvalidInput when n is out of range.
func Requests(n int) ([]domain.AppendRequest, error) {
	if n < 1 || n > Users*Targets/2 {
		return nil, fmt.Errorf("bench: appends must be in 1..%d: %w", Users*Targets/2, domain.ErrInvalidInput)
	}
	like, err := domain.ParseKind("like")
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	reqs := make([]domain.AppendRequest, n)
	drawn := make(map[int]bool, n)
	for i := range reqs {
		k := rng.IntN(Users * Targets)
		for drawn[k] {
			k = rng.IntN(Users * Targets)
		}
		drawn[k] = true
		user, err := domain.NewUserID("user-" + strconv.Itoa(k/Targets))
		if err != nil {
			return nil, err
		}
		target, err := domain.NewTarget("article", strconv.Itoa(k%Targets))
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

// Run times appending reqs to s from appenders goroutines. Commits is left
// to the caller, who observes the store's commits. It returns the first
// append error and ctx's error.
func Run(ctx context.Context, s domain.EventStore, appenders int, reqs []domain.AppendRequest) (Result, error) {
	if appenders < 1 {
		return Result{}, fmt.Errorf("bench: appenders must be >= 1: %w", domain.ErrInvalidInput)
	}
	var next, conflicts atomic.Int64
	errs := make(chan error, appenders)
	var wg sync.WaitGroup
	start := time.Now()
	for range appenders {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(reqs)); i = next.Add(1) - 1 {
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
	n := len(reqs)
	return Result{Appends: n, Elapsed: elapsed, PerSecond: float64(n) / elapsed.Seconds(),
		Conflicts: int(conflicts.Load())}, nil
}

// appendRetrying appends req; when the stream moved (a stream drawn twice
// across runs on a reused database), it is re-based on the snapshot.
func appendRetrying(ctx context.Context, s domain.EventStore, req domain.AppendRequest, conflicts *atomic.Int64) error {
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
		e := req.Events[0]
		e.StreamVersion, e.ID = snap.Version+1, domain.NewEventID()
		req.ExpectedVersion, req.Events = snap.Version, []domain.Event{e}
		req.State = domain.Evolve(snap.State, e)
	}
}
