package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/interactionledger/ledger/adapters/eventcodec"
	"github.com/interactionledger/ledger/adapters/groupcommit"
	"github.com/interactionledger/ledger/domain"
)

// request is one queued append, its columns encoded by the caller's
// goroutine so the writer only binds them.
type request = groupcommit.Request[eventRow]

type result = groupcommit.Result

type eventRow struct {
	id       []byte
	typ      string
	kind     string
	version  int64
	occurred int64
	metadata any // nil or a JSON string
}

// Append appends req atomically, through the group-committing writer when
// appenders are concurrent and on the caller's goroutine when it is alone
// (appendDirect). It
// returns an error wrapping domain.ErrInvalidInput for a malformed request,
// domain.ErrVersionConflict, domain.ErrDuplicateEvent,
// domain.ErrIdempotencyKeyTaken, domain.ErrUnavailable on storage faults or
// for a read-only store, domain.ErrClosed after Close, and ctx's error when
// ctx ends while the append is still queued (nothing of it is then
// written). Once the writer has started the append, Append waits for the
// real outcome even if ctx ends.
func (s *EventStore) Append(ctx context.Context, req domain.AppendRequest) (domain.AppendResult, error) {
	return s.edge.Append(ctx, req)
}

// Decide decides req's command in the writer's transaction and appends its
// event, if any (domain.DecidingStore): the stream is read there, on the
// writer's connection, which keeps its pages cached across commits, instead
// of by a Snapshot on a read connection before the append, whose cache
// every commit empties. A command that changes nothing writes nothing but
// its idempotency record. Errors are Append's, and
// domain.ErrPreconditionFailed when the stream is not at
// req.ExpectedVersion. A store opened read-only decides against Snapshot
// and answers a command that would write with Append's error.
func (s *EventStore) Decide(ctx context.Context, req domain.DecideRequest) (domain.Outcome, error) {
	return s.edge.Decide(ctx, req)
}

// appendable returns why nothing can be appended to stream now: a
// read-only or unusable store, or ctx's end.
func (s *EventStore) appendable(ctx context.Context, stream domain.StreamID) error {
	if s.queue == nil {
		return fmt.Errorf("append %s: store opened read-only: %w", stream, domain.ErrUnavailable)
	}
	if err := s.usable(); err != nil {
		return err
	}
	return ctx.Err()
}

// submit commits r on the caller's goroutine when it appends alone
// (appendDirect), else through the writer's queue, and returns its answer.
func (s *EventStore) submit(ctx context.Context, r *request) (domain.AppendResult, error) {
	if out, ok := s.appendDirect(ctx, r); ok {
		return out.Res, out.Err
	}
	if err := s.queue.Submit(ctx, r); err != nil {
		return domain.AppendResult{}, err
	}
	return r.Wait(ctx, s.done)
}

// appendDirect commits r on the caller's goroutine when appends are not
// concurrent: the last commit held a single append, nothing is queued and
// no transaction is running. A lone appender then skips the hand-off to
// the writer goroutine and back, two goroutine wake-ups per append, and
// still answers only after its commit's fsync. Concurrent appenders find
// the last commit larger, or the connection busy, and queue for the
// writer's group commits. ok is false, with nothing done, when r must be
// queued.
func (s *EventStore) appendDirect(ctx context.Context, r *request) (out result, ok bool) {
	if s.lastBatch.Load() > 1 || s.queue.Len() > 0 || !s.wmu.TryLock() {
		return result{}, false
	}
	defer s.wmu.Unlock()
	if s.closed.Load() {
		return result{Err: fmt.Errorf("append %s: %w", r.Req.Stream, domain.ErrClosed)}, true
	}
	s.one[0] = r
	s.commit(s.one[:], nil, nil)
	s.one[0] = nil
	// Answered: the commit took it. A context that never ends, so that
	// Wait cannot pick ctx's end over the answer.
	res, err := r.Wait(context.Background(), nil)
	return result{Res: res, Err: err}, true
}

// QueueDecide is Decide without waiting for the commit
// (domain.QueueingStore): it queues req for the writer, behind the
// requests queued before it, and returns a function that waits for its
// outcome. The writer decides and appends queued requests in order, those
// in flight in one transaction and one fsync as far as they reach it
// while it commits.
func (s *EventStore) QueueDecide(ctx context.Context, req domain.DecideRequest) (domain.Queued, error) {
	return s.edge.QueueDecide(ctx, req)
}

// enqueue queues r for the writer, never committing it on the caller's
// goroutine, and returns a function that waits for its answer.
func (s *EventStore) enqueue(ctx context.Context, r *request) (func() (domain.AppendResult, error), error) {
	return groupcommit.Enqueue(ctx, s.queue, s.done, r)
}

// encodeRows encodes events' columns.
func encodeRows(events []domain.Event) []eventRow {
	rows := make([]eventRow, len(events))
	for i, e := range events {
		rows[i] = eventRow{
			id: e.ID[:], typ: string(e.Type), kind: e.Kind.String(),
			version: e.StreamVersion, occurred: e.OccurredAt.UnixNano(),
		}
		if md := eventcodec.EncodeMetadata(e.Metadata); md != "" {
			rows[i].metadata = md
		}
	}
	return rows
}

func unixNano(n int64) time.Time { return time.Unix(0, n).UTC() }

// newEdge is s's Append and Decide (groupcommit.Edge), once s is open: a
// store without a writer decides against its Snapshot.
func (s *EventStore) newEdge() groupcommit.Edge[eventRow] {
	e := groupcommit.Edge[eventRow]{Usable: s.appendable, Encode: encodeRows, Submit: s.submit, Enqueue: s.enqueue}
	if s.queue == nil {
		e.Fallback = s
	}
	return e
}
