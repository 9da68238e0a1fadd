package groupcommit_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"
	"weak"

	"github.com/google/uuid"

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

// TestLinger: a request submitted while the writer lingers is handed over
// at once, without waiting for the delay, and joins the batch; once the
// batch is as large as the previous one, Next ends it without waiting.
func TestLinger(t *testing.T) {
	q := groupcommit.NewQueue[row](10, time.Minute, make(chan struct{}))
	l := q.Linger(1, 3)
	late := request()
	go func() {
		time.Sleep(20 * time.Millisecond)
		_ = q.Submit(t.Context(), late)
	}()
	if got := l.Next(); got != late {
		t.Fatalf("Next = %p, want the request submitted while lingering", got)
	}
	if err := q.Submit(t.Context(), request()); err != nil {
		t.Fatal(err)
	}
	if got := l.Next(); got == nil {
		t.Fatal("Next = nil with a request queued and the batch short of the previous one")
	}
	done := make(chan *groupcommit.Request[row])
	go func() { done <- l.Next() }()
	select {
	case got := <-done:
		if got != nil {
			t.Fatalf("Next = %p, want nil once the batch holds 3", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Next waited although the batch was as large as the previous one")
	}
	if got := l.Next(); got != nil {
		t.Fatal("Next after the end of the batch returned a request")
	}
}

// TestLingerEnds: lingering ends at the batch limit, after the delay (then
// only what is queued joins), and when the store closes.
func TestLingerEnds(t *testing.T) {
	t.Run("BatchLimit", func(t *testing.T) {
		q := groupcommit.NewQueue[row](2, time.Minute, make(chan struct{}))
		for range 3 {
			if err := q.Submit(t.Context(), request()); err != nil {
				t.Fatal(err)
			}
		}
		l := q.Linger(1, 5)
		if l.Next() == nil || l.Next() != nil {
			t.Fatal("a batch with room for 1 more took 0 or more than 1")
		}
		if q.Len() != 2 {
			t.Fatalf("%d left queued, want 2", q.Len())
		}
	})
	t.Run("Delay", func(t *testing.T) {
		q := groupcommit.NewQueue[row](10, 30*time.Millisecond, make(chan struct{}))
		start := time.Now()
		if got := q.Linger(1, 5).Next(); got != nil || time.Since(start) < 30*time.Millisecond {
			t.Fatalf("Next = %p after %v, want nil after the delay", got, time.Since(start))
		}
	})
	t.Run("Closed", func(t *testing.T) {
		quit := make(chan struct{})
		q := groupcommit.NewQueue[row](10, time.Minute, quit)
		go func() {
			time.Sleep(20 * time.Millisecond)
			close(quit)
		}()
		if got := q.Linger(1, 5).Next(); got != nil {
			t.Fatalf("Next after close = %p, want nil", got)
		}
	})
}

// TestAnswerer: every queued answer reaches its caller, in order, and
// Close returns only once all are delivered; the slices handed over may be
// reused at once.
func TestAnswerer(t *testing.T) {
	a := groupcommit.NewAnswerer[row]()
	var all []*groupcommit.Request[row]
	batch := make([]*groupcommit.Request[row], 3)
	results := make([]groupcommit.Result, 3)
	for b := range 4 {
		for i := range batch {
			batch[i] = request()
			groupcommit.Take(batch[i : i+1])
			results[i] = groupcommit.Result{Res: domain.AppendResult{LastPosition: int64(b*3 + i)}}
		}
		all = append(all, batch...)
		a.Answer(batch, results)
		clear(batch) // reused by the next commit
		clear(results)
	}
	a.Close()
	checked := make(chan error, 1)
	go func() {
		for want, r := range all {
			res, err := r.Wait(t.Context(), nil)
			if err != nil || res.LastPosition != int64(want) {
				checked <- fmt.Errorf("request %d answered %+v, %v", want, res, err)
				return
			}
		}
		checked <- nil
	}()
	select {
	case err := <-checked:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a request was never answered")
	}
}

// TestLingerTake: Take hands over only requests the writer now owns,
// skipping one whose caller gave up while it was queued; a nil Linger
// hands over nothing.
func TestLingerTake(t *testing.T) {
	q := groupcommit.NewQueue[row](10, 0, make(chan struct{}))
	gaveUp, kept := request(), request()
	for _, r := range []*groupcommit.Request[row]{gaveUp, kept} {
		if err := q.Submit(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := gaveUp.Wait(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
	l := q.Linger(1, 0)
	if got := l.Take(); got != kept {
		t.Fatalf("Take = %p, want the request still pending", got)
	}
	if len(groupcommit.Take([]*groupcommit.Request[row]{kept})) != 0 {
		t.Fatal("a request Take handed over was still pending")
	}
	if l.Take() != nil {
		t.Fatal("Take after the queue ran dry returned a request")
	}
	var none *groupcommit.Linger[row]
	if none.Take() != nil {
		t.Fatal("a nil Linger handed over a request")
	}
}

// TestEnqueuedNotTakenAfterCtxEnds: a request enqueued with a context that
// has ended is not taken by the writer, even while its caller is not yet
// waiting for it (a pipeline waits for the oldest of many): it is never
// written, and its wait returns the context's error.
func TestEnqueuedNotTakenAfterCtxEnds(t *testing.T) {
	q := groupcommit.NewQueue[row](4, 0, nil)
	ctx, cancel := context.WithCancel(t.Context())
	r := request()
	wait, err := groupcommit.Enqueue(ctx, q, nil, r)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if got := groupcommit.Take([]*groupcommit.Request[row]{<-q.C()}); len(got) != 0 {
		t.Fatalf("the writer took a request whose context had ended")
	}
	if _, err := wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait = %v, want context.Canceled", err)
	}
}

// TestWaitOfADrainedSubmit: a submitted request (Append's, Decide's) that
// Drain failed answers ErrClosed from Wait, even when its context has
// ended too, as before requests could be enqueued: only an enqueued one
// that the writer cancelled goes unanswered. Wait picks either ready case
// at random; twenty requests make a wrong pick all but certain.
func TestWaitOfADrainedSubmit(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for i := range 20 {
		q := groupcommit.NewQueue[row](4, 0, nil)
		r := request()
		if err := q.Submit(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		q.Drain()
		if _, err := r.Wait(ctx, nil); !errors.Is(err, domain.ErrClosed) {
			t.Fatalf("request %d: Wait = %v, want ErrClosed", i, err)
		}
	}
}

// TestFollows: a request queued to follow another (DecideRequest.Follows)
// is decided only while the writer has that one's rows written, in its
// open transaction or the log: not once it failed on its own, nor after
// its transaction was rolled back.
func TestFollows(t *testing.T) {
	queue, taken := followsEdge(t)
	queue(false, 1, queue(true, 0, nil))
	first, second := (*taken)[0], (*taken)[1]
	liked := domain.Snapshot{Version: 1, State: domain.State{}.With(first.Decide.Command.Kind, true)}
	firstID := first.Decide.Command.EventID
	for name, c := range map[string]struct {
		write  func()
		stored bool // first's event is in the log (appended before)
		want   error
	}{
		"Written":      {func() { first.Written(nil) }, false, nil},
		"Failed":       {func() { first.Written(domain.ErrDuplicateEvent) }, false, domain.ErrFollowedNotAppended},
		"RolledBack":   {func() { first.Written(nil); groupcommit.RolledBack((*taken)[:1]) }, false, domain.ErrFollowedNotAppended},
		"StoredBefore": {func() { first.Written(domain.ErrPreconditionFailed) }, true, nil},
	} {
		if _, err := first.DecideAt(domain.Snapshot{}, nil); err != nil {
			t.Fatal(err)
		}
		c.write()
		stored := func(id uuid.UUID) (bool, error) { return c.stored && id == firstID, nil }
		if _, err := second.DecideAt(liked, stored); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

// followsEdge is an Edge whose Enqueue keeps the requests queued (taken),
// and queue, which queues a like (on) or unlike of one stream.
func followsEdge(t *testing.T) (queue func(on bool, expected int64, follows domain.Queued) domain.Queued, taken *[]*groupcommit.Request[row]) {
	taken = new([]*groupcommit.Request[row])
	e := groupcommit.Edge[row]{
		Usable: func(context.Context, domain.StreamID) error { return nil },
		Encode: func(events []domain.Event) []row { return make([]row, len(events)) },
		Enqueue: func(_ context.Context, r *groupcommit.Request[row]) (func() (domain.AppendResult, error), error) {
			*taken = append(*taken, r)
			return func() (domain.AppendResult, error) { return domain.AppendResult{}, nil }, nil
		},
	}
	user, err := domain.NewUserID("u1")
	if err != nil {
		t.Fatal(err)
	}
	target, err := domain.NewTarget("article", "a1")
	if err != nil {
		t.Fatal(err)
	}
	like, err := domain.ParseKind("like")
	if err != nil {
		t.Fatal(err)
	}
	st := domain.StreamID{User: user, Target: target}
	return func(on bool, expected int64, follows domain.Queued) domain.Queued {
		c := domain.Command{Stream: st, Kind: like, On: on, EventID: domain.NewEventID(), OccurredAt: time.Now()}
		q, err := e.QueueDecide(t.Context(), domain.DecideRequest{Command: c, ExpectedVersion: &expected, Follows: follows})
		if err != nil {
			t.Fatal(err)
		}
		return q
	}, taken
}

// TestFollowsLetsGo: once answered, a request queued to follow another
// keeps it reachable no more, so that an import of a pair toggled a
// hundred thousand times does not keep every request of it (540 MiB).
func TestFollowsLetsGo(t *testing.T) {
	queue, taken := followsEdge(t)
	var last domain.Queued
	for i := range 3 {
		last = queue(i%2 == 0, int64(i), last)
	}
	first := weak.Make((*taken)[0])
	for i, r := range *taken {
		if _, err := r.DecideAt(domain.Snapshot{Version: int64(i), State: domain.State{}.With(r.Decide.Command.Kind, i%2 == 1)}, nil); err != nil {
			t.Fatal(err)
		}
		r.Written(nil)
		r.Answer(groupcommit.Result{})
	}
	*taken = nil
	runtime.GC()
	if first.Value() != nil {
		t.Error("the first request of the stream is reachable from the last, answered")
	}
	runtime.KeepAlive(last)
}
