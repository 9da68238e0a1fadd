package sqlite

import (
	"sync"
	"sync/atomic"

	"github.com/interactionledger/ledger/adapters/eventcodec"
	"github.com/interactionledger/ledger/domain"
)

// recentCap is how many of its latest committed events a store keeps for
// AppendRecent: a tail that falls further behind reads the log.
const recentCap = 4096

// recent holds the events of this store's latest commits, at consecutive
// positions. A commit whose first position does not follow the last one
// held, or that follows another connection's commit (the writer found the
// file's data version changed: an older copy restored into the file
// reuses the positions held), starts it afresh, so what it holds is always
// exactly the log's events at those positions.
type recent struct {
	// wanted: someone has asked (AppendRecent); until then commits keep
	// nothing, so that a store nobody follows (an import, bench store's
	// lone appender) pays nothing for it.
	wanted atomic.Bool
	mu     sync.RWMutex
	events []domain.Event
}

// add appends the events of a commit, in position order.
func (r *recent) add(events []domain.Event) {
	if len(events) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.events); n > 0 && r.events[n-1].Position+1 != events[0].Position {
		r.events = r.events[:0]
	}
	if len(r.events)+len(events) > recentCap {
		// Keep the newer half (amortised: a copy every recentCap/2 events).
		keep := max(0, min(len(r.events), recentCap/2-len(events)))
		r.events = append(r.events[:0], r.events[len(r.events)-keep:]...)
		events = events[max(0, len(events)-recentCap):]
	}
	r.events = append(r.events, events...)
}

// reset forgets every event held.
func (r *recent) reset() {
	r.mu.Lock()
	r.events = r.events[:0]
	r.mu.Unlock()
}

// appendAfter appends up to limit held events after position after to dst
// (domain.RecentReader).
func (r *recent) appendAfter(dst []domain.Event, after int64, limit int) ([]domain.Event, bool) {
	if !r.wanted.Load() {
		r.wanted.Store(true)
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.events) == 0 || limit <= 0 {
		return dst, false
	}
	i := after + 1 - r.events[0].Position
	if i < 0 || i > int64(len(r.events)) {
		return dst, false
	}
	held := r.events[i:]
	return append(dst, held[:min(limit, len(held))]...), true
}

// AppendRecent appends up to limit of this store's latest committed events
// after position after (domain.RecentReader). It reports false after
// Close, and when it does not hold the store's own commits from after+1
// on.
func (s *EventStore) AppendRecent(dst []domain.Event, after int64, limit int) ([]domain.Event, bool) {
	if s.closed.Load() {
		return dst, false
	}
	return s.recent.appendAfter(dst, after, limit)
}

// committedEvents appends to events the events a commit wrote, in position
// order, as the log's reads decode them (times from their stored
// nanoseconds, UTC; metadata from its stored JSON). ok is false if a stored
// metadata does not decode, which the writer's own encoding rules out.
func committedEvents(events []domain.Event, batch []*request, results []result) (_ []domain.Event, ok bool) {
	for i, r := range batch {
		if results[i].Err != nil || len(r.Rows) == 0 {
			continue
		}
		first := results[i].Res.LastPosition - int64(len(r.Rows)) + 1
		recorded := unixNano(results[i].Res.RecordedAt.UnixNano())
		for j, e := range r.Req.Events {
			e.Position, e.RecordedAt = first+int64(j), recorded
			e.OccurredAt, e.Metadata = unixNano(r.Rows[j].occurred), domain.Metadata{}
			if md, _ := r.Rows[j].metadata.(string); md != "" {
				var err error
				if e.Metadata, err = eventcodec.DecodeMetadata(md); err != nil {
					return nil, false
				}
			}
			events = append(events, e)
		}
	}
	return events, true
}
