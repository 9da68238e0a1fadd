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
	if s.queue == nil {
		return domain.AppendResult{}, fmt.Errorf("append %s: store opened read-only: %w", req.Stream, domain.ErrUnavailable)
	}
	if err := s.usable(); err != nil {
		return domain.AppendResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return domain.AppendResult{}, err
	}
	rows, err := encodeEvents(req)
	if err != nil {
		return domain.AppendResult{}, fmt.Errorf("append %s: %w", req.Stream, err)
	}
	r := groupcommit.NewRequest(req, rows)
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

// encodeEvents checks req (domain.AppendRequest.Validate) and encodes its
// events' columns. Errors wrap domain.ErrInvalidInput.
func encodeEvents(req domain.AppendRequest) ([]eventRow, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	rows := make([]eventRow, len(req.Events))
	for i, e := range req.Events {
		rows[i] = eventRow{
			id: e.ID[:], typ: string(e.Type), kind: e.Kind.String(),
			version: e.StreamVersion, occurred: e.OccurredAt.UnixNano(),
		}
		if md := eventcodec.EncodeMetadata(e.Metadata); md != "" {
			rows[i].metadata = md
		}
	}
	return rows, nil
}

func unixNano(n int64) time.Time { return time.Unix(0, n).UTC() }
