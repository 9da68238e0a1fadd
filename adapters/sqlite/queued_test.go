package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/interactionledger/ledger/adapters/storetest"
	"github.com/interactionledger/ledger/domain"
)

// TestQueuedDecideNotWrittenAfterCtxEnds: commands queued with QueueDecide
// whose context ends while they wait behind a commit are not written, though
// their caller has not called wait yet (an import stopped with Ctrl-C waits
// for its oldest step while up to 1,024 later ones are queued); each wait
// returns the context's error, and the log holds only what was taken.
func TestQueuedDecideNotWrittenAfterCtxEnds(t *testing.T) {
	held, hold := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s := MustOpen(t, Config{Path: filepath.Join(t.TempDir(), "q.db"), OnCommit: func(CommitStats) {
		once.Do(func() { close(held); <-hold }) // the first commit holds the writer
	}})
	decide := func(ctx context.Context, user string) domain.Queued {
		c := storetest.Command(t, storetest.MustStream(t, user, "article/a1"), "like", true)
		w, err := s.QueueDecide(ctx, domain.DecideRequest{Command: c})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	first := decide(t.Context(), "u0")
	<-held
	ctx, cancel := context.WithCancel(t.Context())
	var queued []domain.Queued
	for _, u := range []string{"u1", "u2", "u3"} {
		queued = append(queued, decide(ctx, u))
	}
	cancel()
	close(hold)
	if _, err := first.Wait(); err != nil {
		t.Fatal(err)
	}
	// Queued behind them: once it is answered, the writer is past them.
	if _, err := decide(t.Context(), "u4").Wait(); err != nil {
		t.Fatal(err)
	}
	for i, w := range queued {
		if out, err := w.Wait(); !errors.Is(err, context.Canceled) {
			t.Errorf("queued command %d: %+v %v, want context.Canceled", i, out, err)
		}
	}
	if events := storetest.MustReadAll(t, s, domain.EventFilter{}); len(events) != 2 {
		t.Fatalf("%d events, want the 2 whose context did not end", len(events))
	}
}
