package projections_test

import (
	"math/rand/v2"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/interactionledger/ledger/internal/walcheckpoint"
	"github.com/interactionledger/ledger/projections"
)

// TestViewsWALRestarts: an applier that never pauses still finds the views
// file's WAL emptied by its checkpointer and the finish on its write
// connection, so SQLite writes the WAL from its start again rather than
// growing the file; the tables then answer as those of a file that never
// checkpointed along the way. Without the finish, 3,000 batches brought
// no restart here; with it, 3 restarts took ~75 batches (~14 under the
// race detector).
func TestViewsWALRestarts(t *testing.T) {
	restore := projections.SetCheckpointPages(20)
	path := filepath.Join(t.TempDir(), "ledger.db.views")
	var observed atomic.Int64
	s, err := projections.Open(t.Context(), projections.Config{Path: path, Kinds: kinds, MemoryRows: -1,
		OnCheckpoint: func(time.Duration, error) { observed.Add(1) }}, nil, nil)
	restore()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ref := openWith(t, "", -1)
	rng, l, on := rand.New(rand.NewPCG(3, 4)), newEventLog(t), map[string]bool{}
	restarts, last := 0, uint64(0)
	for batches := 0; restarts < 3; batches++ {
		if batches == 3000 {
			t.Fatalf("%d batches, %d events: the views WAL restarted %d times", batches, len(l.events), restarts)
		}
		from := len(l.events)
		randomToggles(l, rng, 1+rng.IntN(20), on)
		applyAll(t, s, l.events[from:])
		if g, ok := walcheckpoint.Generation(path + "-wal"); ok {
			if g != last && last != 0 {
				restarts++
			}
			last = g
		}
	}
	if observed.Load() == 0 {
		t.Fatal("Config.OnCheckpoint not called")
	}
	applyAll(t, ref, l.events)
	t.Logf("%d events", len(l.events))
	sameAnswers(t, s, ref)
}
