package groupcommit

import (
	"context"
	"fmt"
	"sync"

	"github.com/interactionledger/ledger/domain"
)

// Edge is a writer store's Append (domain.EventStore), Decide
// (domain.DecidingStore) and QueueDecide (domain.QueueingStore), the same
// in every store but for its rows: Usable says why nothing can be appended
// to a stream now (a read-only or closed store, ctx's end), Encode makes
// the rows of events, Submit hands a request to the store's writer and
// waits for its answer, and Enqueue queues one for the writer, behind
// those queued before, and returns a function that waits for it. A store
// without a writer (opened read-only) sets Fallback to itself: Decide then
// decides against its Snapshot (domain.DecideThenAppend), and a command
// that would write gets Append's error.
type Edge[Row any] struct {
	Usable   func(ctx context.Context, stream domain.StreamID) error
	Encode   func(events []domain.Event) []Row
	Submit   func(ctx context.Context, r *Request[Row]) (domain.AppendResult, error)
	Enqueue  func(ctx context.Context, r *Request[Row]) (wait func() (domain.AppendResult, error), err error)
	Fallback domain.EventStore
}

// Append checks req and has the writer append it.
func (e Edge[Row]) Append(ctx context.Context, req domain.AppendRequest) (domain.AppendResult, error) {
	if err := e.Usable(ctx, req.Stream); err != nil {
		return domain.AppendResult{}, err
	}
	if err := req.Validate(); err != nil {
		return domain.AppendResult{}, fmt.Errorf("append %s: %w", req.Stream, err)
	}
	return e.Submit(ctx, NewRequest(req, e.Encode(req.Events)))
}

// Decide checks req and has the writer decide its command in its
// transaction and append the event it calls for, if any.
func (e Edge[Row]) Decide(ctx context.Context, req domain.DecideRequest) (domain.Outcome, error) {
	r, err := e.decideRequest(ctx, req)
	switch {
	case err != nil:
		return domain.Outcome{}, err
	case r == nil:
		return domain.DecideThenAppend(ctx, e.Fallback, req)
	}
	if _, err := e.Submit(ctx, r); err != nil {
		return domain.Outcome{}, err
	}
	return r.Decided, nil
}

// QueueDecide checks req and queues it for the writer as Decide would
// submit it, returning it queued. A store without a writer decides it at
// once.
func (e Edge[Row]) QueueDecide(ctx context.Context, req domain.DecideRequest) (domain.Queued, error) {
	r, err := e.decideRequest(ctx, req)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return domain.Answered(domain.DecideThenAppend(ctx, e.Fallback, req)), nil
	}
	wait, err := e.Enqueue(ctx, r)
	if err != nil {
		return nil, err
	}
	return &queued[Row]{r: r, wait: wait}, nil
}

// queued is a request QueueDecide queued (domain.Queued).
type queued[Row any] struct {
	r    *Request[Row]
	wait func() (domain.AppendResult, error)
	once sync.Once
	out  domain.Outcome
	err  error
}

func (q *queued[Row]) Wait() (domain.Outcome, error) {
	q.once.Do(func() {
		if _, q.err = q.wait(); q.err == nil {
			q.out = q.r.Decided
		}
	})
	return q.out, q.err
}

// decideRequest checks req and makes the writer's request of it; nil, and
// no error, for a store without a writer, which decides req against its
// Snapshot instead (domain.DecideThenAppend on the Fallback).
func (e Edge[Row]) decideRequest(ctx context.Context, req domain.DecideRequest) (*Request[Row], error) {
	st := req.Command.Stream
	cand, err := req.Candidate()
	if err != nil {
		return nil, fmt.Errorf("decide %s: %w", st, err)
	}
	if e.Fallback != nil {
		return nil, nil
	}
	if err := e.Usable(ctx, st); err != nil {
		return nil, err
	}
	r := NewDecideRequest(req, cand, e.Encode(cand.Events))
	if req.Follows != nil {
		f, ok := req.Follows.(*queued[Row])
		if !ok || f.r.Req.Stream != st {
			return nil, fmt.Errorf("decide %s: it follows a command this store did not queue for its stream", st)
		}
		// The request, not the Queued, so that what the one followed
		// followed is not kept reachable (Answer lets go of it).
		r.follows, r.Decide.Follows = f.r, nil
	}
	return r, nil
}

// Enqueue queues r in q and returns a function that waits for its answer
// (Request.Wait): a store's Edge.Enqueue. The writer does not take r once
// ctx has ended, whether or not the function is waiting: r is then never
// written, and the function returns ctx's error.
func Enqueue[Row any](ctx context.Context, q *Queue[Row], writerDone <-chan struct{}, r *Request[Row]) (func() (domain.AppendResult, error), error) {
	r.ctx = ctx
	if err := q.Submit(ctx, r); err != nil {
		return nil, err
	}
	return func() (domain.AppendResult, error) { return r.Wait(ctx, writerDone) }, nil
}
