package groupcommit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/groupcommit"
	"github.com/interactionledger/ledger/domain"
)

type row struct{}

func request() *groupcommit.Request[row] {
	return groupcommit.NewRequest[row](domain.AppendRequest{}, nil)
}

func TestWait(t *testing.T) {
	t.Run("Answered", func(t *testing.T) {
		r := request()
		if got := groupcommit.Take([]*groupcommit.Request[row]{r}); len(got) != 1 {
			t.Fatalf("Take = %d requests, want 1", len(got))
		}
		r.Answer(groupcommit.Result{Res: domain.AppendResult{LastPosition: 7}})
		if res, err := r.Wait(t.Context(), nil); err != nil || res.LastPosition != 7 {
			t.Fatalf("Wait = %+v, %v", res, err)
		}
	})
	t.Run("ErrGiveUpWhilePending", func(t *testing.T) {
		r := request()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := r.Wait(ctx, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait = %v, want context.Canceled", err)
		}
		if got := groupcommit.Take([]*groupcommit.Request[row]{r}); len(got) != 0 {
			t.Fatal("the writer took a request its caller gave up")
		}
	})
	t.Run("TakenOutlivesCtx", func(t *testing.T) {
		r := request()
		groupcommit.Take([]*groupcommit.Request[row]{r})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		go r.Answer(groupcommit.Result{Err: domain.ErrVersionConflict})
		if _, err := r.Wait(ctx, nil); !errors.Is(err, domain.ErrVersionConflict) {
			t.Fatalf("Wait = %v, want the writer's answer once it took the request", err)
		}
	})
	t.Run("ErrClosed", func(t *testing.T) {
		done := make(chan struct{})
		close(done)
		if _, err := request().Wait(t.Context(), done); !errors.Is(err, domain.ErrClosed) {
			t.Fatalf("Wait after the writer exited = %v, want ErrClosed", err)
		}
	})
}

func TestGather(t *testing.T) {
	quit := make(chan struct{})
	q := groupcommit.NewQueue[row](3, 50*time.Millisecond, quit)
	for range 5 {
		if err := q.Submit(t.Context(), request()); err != nil {
			t.Fatal(err)
		}
	}
	if got := q.Gather(nil, 0); len(got) != 3 {
		t.Fatalf("Gather = %d, want the batch limit 3", len(got))
	}
	if got := q.Gather(nil, 1); len(got) != 2 {
		t.Fatalf("Gather = %d, want the 2 left, without lingering", len(got))
	}
	start := time.Now()
	if err := q.Submit(t.Context(), request()); err != nil {
		t.Fatal(err)
	}
	if got := q.Gather(nil, 3); len(got) != 1 || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("Gather after a batch of 3 = %d requests after %v, want 1 after lingering", len(got), time.Since(start))
	}
}

func TestDrainAndSubmitAfterClose(t *testing.T) {
	quit := make(chan struct{})
	q := groupcommit.NewQueue[row](2, 0, quit)
	r := request()
	if err := q.Submit(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	close(quit)
	q.Drain()
	if _, err := r.Wait(t.Context(), nil); !errors.Is(err, domain.ErrClosed) {
		t.Fatalf("a drained request = %v, want ErrClosed", err)
	}
	for range 8 { // fill the buffer: Submit must not block once closed
		if err := q.Submit(t.Context(), request()); err != nil && !errors.Is(err, domain.ErrClosed) {
			t.Fatalf("Submit after close = %v", err)
		}
	}
}
