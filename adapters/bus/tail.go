package bus

import (
	"context"
	"log/slog"
	"time"

	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/failurelog"
)

// Defaults of the store tail. A batch is one transaction per projection;
// when catching up, 5000 events per batch applied about three times as
// fast as 1000 (BenchmarkCatchUp in projections); once caught up, batches
// hold whatever was committed since the last one.
const (
	DefaultPollInterval = 500 * time.Millisecond
	DefaultBatchSize    = 5000
)

// tail reads the store after a position in batches, waiting for commits.
// It follows one reader: copy it for each.
type tail struct {
	store domain.Tailable
	poll  time.Duration
	batch int
	log   *slog.Logger
	// memoryOnly: the log has been queried since the last poll, so a read
	// finding nothing after its position in the store's memory
	// (domain.RecentReader) need not query it again. Other processes'
	// commits wake no one; they are found at the next poll, or sooner by
	// the next commit of this process (the store's memory then starts
	// after them, and the read queries the log).
	memoryOnly bool
	// failures logs failed reads of the log without a line per poll.
	failures *failurelog.Log
}

func newTail(store domain.Tailable, poll time.Duration, batch int, log *slog.Logger) *tail {
	if poll <= 0 {
		poll = DefaultPollInterval
	}
	if batch <= 0 {
		batch = DefaultBatchSize
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &tail{store: store, poll: poll, batch: batch, log: log,
		failures: &failurelog.Log{Logger: log, What: "reading the event log", Level: slog.LevelWarn}}
}

// next returns the next batch of events after position after, waiting for
// a commit in this process or the next poll when there is none. The batch
// starts with the log's event at after itself when the log holds one (and
// after > 0): a consumer that knows which event it last took can check
// that the log still holds it there, so that a log restored from an older
// copy under it, which reuses positions, is not followed blindly (the
// projections do, see projections.ApplyAll; consumers that do not skip
// it). A read error is logged and retried at the next poll; next returns
// only events or ctx's error.
func (t *tail) next(ctx context.Context, after int64) ([]domain.Event, error) {
	for {
		// Taken before reading, so a commit between the read and the wait
		// still wakes us.
		wake := t.store.Committed()
		events, err := t.read(ctx, after)
		if err == nil {
			t.failures.Succeeded()
		}
		if err == nil && len(events) > 0 && events[len(events)-1].Position > after {
			return events, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			t.failures.Failed(err, "after", after)
			wake = nil
		}
		woken, err := t.wait(ctx, wake)
		if err != nil {
			return nil, err
		}
		t.memoryOnly = t.memoryOnly && woken
	}
}

// read returns the events after position after. A store that holds its
// own latest commits (domain.RecentReader) answers from memory, and when
// it holds none after after, the log is queried unless memoryOnly.
func (t *tail) read(ctx context.Context, after int64) ([]domain.Event, error) {
	// Grown as needed: once caught up, a read returns a handful of events,
	// and a full batch's capacity per read would be most of the server's
	// allocation.
	events := make([]domain.Event, 0, min(t.batch, 64))
	from, limit := after, t.batch
	if after > 0 {
		from, limit = after-1, t.batch+1 // the event at after too (see next)
	}
	if r, ok := t.store.(domain.RecentReader); ok {
		recent, held := r.AppendRecent(events, from, limit)
		if held && (len(recent) > 0 && recent[len(recent)-1].Position > after || t.memoryOnly) {
			return recent, nil
		}
		events = recent[:0]
	}
	events, err := domain.AppendEvents(events, t.store.ReadEvents(ctx, domain.EventFilter{After: from, Limit: limit}))
	t.memoryOnly = err == nil
	return events, err
}

// wait returns when wake closes (woken), at the next poll, or when ctx
// ends (its error).
func (t *tail) wait(ctx context.Context, wake <-chan struct{}) (woken bool, err error) {
	timer := time.NewTimer(t.poll)
	defer timer.Stop()
	select {
	case <-wake:
		return true, nil
	case <-timer.C:
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}
