package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/interactionledger/ledger/adapters/groupcommit"
)

// idempotencyTTL is how long idempotency records are kept; purgeEvery is
// how often the writer deletes older ones.
const (
	idempotencyTTL = 48 * time.Hour
	purgeEvery     = time.Hour
)

// Timeouts of the write path: a database that does not answer fails the
// batch with domain.ErrUnavailable instead of holding its callers.
const (
	// acquireTimeout bounds the wait for a pooled connection.
	acquireTimeout = 5 * time.Second
	// commitTimeout bounds a group commit's two round trips beyond the
	// head lock's timeout, so that a lock wait fails first, with its cause.
	commitTimeout = 20 * time.Second
	// connectTimeout bounds opening a connection, unless the URL sets
	// connect_timeout.
	connectTimeout = 10 * time.Second
	// idleInTxTimeout is the sessions' idle_in_transaction_session_timeout
	// unless the URL sets one.
	idleInTxTimeout = "30s"
)

// run is the writer goroutine: it gathers queued appends into batches and
// commits them until Close.
func (s *EventStore) run() {
	defer close(s.done)
	purge := time.NewTicker(purgeEvery)
	defer purge.Stop()
	batch := make([]*request, 0, s.cfg.MaxBatch)
	prev := 0
	for {
		select {
		case <-s.quit:
			s.queue.Drain()
			return
		default:
		}
		select {
		case r := <-s.queue.C():
			batch = s.queue.Gather(append(batch, r), prev)
			prev = len(batch)
			s.commit(batch)
			clear(batch)
			batch = batch[:0]
		case <-purge.C:
			if err := s.purge(s.ctx); err != nil {
				s.log.Warn("purging idempotency records failed", "err", err)
			}
		case <-s.quit:
			s.queue.Drain()
			return
		}
	}
}

// purge deletes idempotency records older than idempotencyTTL.
func (s *EventStore) purge(ctx context.Context) error {
	cutoff := time.Now().Add(-idempotencyTTL).UnixNano()
	if _, err := s.pool.Exec(ctx, `DELETE FROM idempotency WHERE created_at < $1`, cutoff); err != nil {
		return fmt.Errorf("purge idempotency records: %w", translate(ctx, err))
	}
	return nil
}

// commit writes batch in one transaction and answers every append in it
// that its caller has not cancelled.
func (s *EventStore) commit(batch []*request) {
	taken := groupcommit.Take(batch)
	if len(taken) == 0 {
		return
	}
	start := time.Now()
	results, stats := s.commitTx(taken)
	stats.Duration = time.Since(start)
	if stats.Err == nil {
		s.notifyCommitted()
		if stats.Events > 0 {
			// Only a commit that wrote an event ends a run of failures:
			// one of decided commands that changed nothing inserts no row,
			// and commits while inserts fail.
			s.failures.Succeeded()
		}
	} else {
		s.failures.Failed(stats.Err, "appends", len(taken))
	}
	if s.cfg.OnCommit != nil {
		s.cfg.OnCommit(stats)
	}
	for i, r := range taken {
		r.Answer(results[i])
	}
}

// failAll answers every append of a batch with err.
func failAll(batch []*request, err error) ([]result, CommitStats) {
	groupcommit.RolledBack(batch)
	results := make([]result, len(batch))
	for i, r := range batch {
		results[i].Err = fmt.Errorf("append %s: %w", r.Req.Stream, err)
	}
	return results, CommitStats{Appends: len(batch), Failed: len(batch), Err: err}
}
