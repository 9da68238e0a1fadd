package bus_test

import (
	"context"
	"errors"
	"iter"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/sqlite"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

// restoredLog is a log that, once restored is set, holds another event
// (another id, the same content) at position at: restored from an older
// copy under a running server and grown again past at. It is a plain
// domain.Tailable, so a tail reads it and not the store's memory.
type restoredLog struct {
	store    *sqlite.EventStore
	at       int64
	restored atomic.Bool
	id       domain.Event
}

func (l *restoredLog) Committed() <-chan struct{} { return l.store.Committed() }

func (l *restoredLog) LastPosition(ctx context.Context) (int64, error) {
	return l.store.LastPosition(ctx)
}

func (l *restoredLog) ReadEvents(ctx context.Context, f domain.EventFilter) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		for e, err := range l.store.ReadEvents(ctx, f) {
			if err == nil && e.Position == l.at && l.restored.Load() {
				e.ID = l.id.ID
			}
			if !yield(e, err) {
				return
			}
		}
	}
}

// TestPipelineStopsOnALogRestoredUnderIt: a log restored under a running
// server and grown past its position before WatchHead's next look was
// followed blindly: the tail read after the server's position, the new
// events there were applied onto counts the log no longer had, and a
// restart's Open found the views file's last event in the log. The tail
// now hands over the event at its position with each batch, and the set
// stops when that is not the event it applied there.
func TestPipelineStopsOnALogRestoredUnderIt(t *testing.T) {
	dir := t.TempDir()
	store := MustStore(t, filepath.Join(dir, "ledger.db"))
	s := MustSet(t, filepath.Join(dir, "views"), store)
	l := domain.NewLedger(store, kinds, domain.LedgerConfig{}, nil)
	for i := range 20 {
		set(t, l, "u1", "article/a", "like", i%2 == 0)
	}
	log := &restoredLog{store: store, at: 20, id: domain.Event{ID: domain.NewEventID()}}
	MustRun(t, log, s)
	waitApplied(t, s, store)
	log.restored.Store(true)
	set(t, l, "u1", "article/a", "like", true) // position 21
	deadline := time.Now().Add(5 * time.Second)
	for s.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.Err(); !errors.Is(err, projections.ErrDiverged) || s.Applied() != 20 {
		t.Fatalf("Err once the log holds another event at 20: %v, applied %d; want ErrDiverged at 20", err, s.Applied())
	}
}
