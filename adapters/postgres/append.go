package postgres

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
	id       [16]byte
	typ      string
	kind     string
	version  int64
	occurred int64
	metadata *string // nil or a JSON object
}

// Append appends req atomically through the group-committing writer. It
// returns an error wrapping domain.ErrInvalidInput for a malformed request,
// domain.ErrVersionConflict, domain.ErrDuplicateEvent,
// domain.ErrIdempotencyKeyTaken, domain.ErrUnavailable when the database
// cannot be reached or fails (or the store is read-only), domain.ErrClosed after Close, and ctx's
// error when ctx ends while the append is still queued (nothing of it is
// then written). Once the writer has started the append, Append waits for
// the real outcome even if ctx ends.
func (s *EventStore) Append(ctx context.Context, req domain.AppendRequest) (domain.AppendResult, error) {
	if err := s.usable(); err != nil {
		return domain.AppendResult{}, err
	}
	if s.queue == nil {
		return domain.AppendResult{}, fmt.Errorf("append %s: store opened read-only: %w", req.Stream, domain.ErrUnavailable)
	}
	if err := ctx.Err(); err != nil {
		return domain.AppendResult{}, err
	}
	rows, err := encodeEvents(req)
	if err != nil {
		return domain.AppendResult{}, fmt.Errorf("append %s: %w", req.Stream, err)
	}
	r := groupcommit.NewRequest(req, rows)
	if err := s.queue.Submit(ctx, r); err != nil {
		return domain.AppendResult{}, err
	}
	return r.Wait(ctx, s.done)
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
			id: e.ID, typ: string(e.Type), kind: e.Kind.String(),
			version: e.StreamVersion, occurred: e.OccurredAt.UnixNano(),
		}
		if md := eventcodec.EncodeMetadata(e.Metadata); md != "" {
			rows[i].metadata = &md
		}
	}
	return rows, nil
}

func unixNano(n int64) time.Time { return time.Unix(0, n).UTC() }
