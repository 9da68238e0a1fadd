package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

// write returns the handler of PUT (on) or DELETE (off).
func (s *Server) write(on bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		req, err := s.parseWrite(r, on)
		if err != nil {
			return err
		}
		out, err := s.set(r.Context(), req)
		if err != nil {
			return err
		}
		if out.Changed {
			s.metrics.advanceHead(out.Position)
		}
		if err := s.applied(r.Context(), out.Position); err != nil {
			return s.committedNotApplied(err, out)
		}
		// The viewer's state and the counts come from one read, so they
		// show one state of the log (at or after the event), never the
		// event's viewer beside counts that later writes moved.
		view, err := s.deps.Read.Target(r.Context(), req.Target, &req.User)
		if err != nil {
			return s.committedNotRead(err, out)
		}
		w.Header().Set("Ledger-Position", fmt.Sprint(out.Position))
		return writeJSON(w, http.StatusOK, s.writeResponse(req, out, view))
	}
}

// committedNotApplied names, in a write's 503 for a read model that did
// not apply its event in time, what is already done: the event is durable,
// and a retry with the same Idempotency-Key answers it without appending.
// On a node whose read model stopped until a restart, neither that retry
// nor a read with min_position answers before the restart, so the detail
// says that instead, and why.
func (s *Server) committedNotApplied(err error, out domain.Outcome) error {
	var he *httpError
	if !errors.As(err, &he) || he.slug != "not-caught-up" {
		return err
	}
	done := *he
	if out.Changed {
		done.position = out.Position
	}
	if stopped := s.deps.Read.Stopped(); stopped != nil {
		done.detail = fmt.Sprintf("the write is durable at position %d (changed: %t), but this node's read models "+
			"are stopped until it is restarted%s; its reads answer 503 until then: read it on another node, "+
			"or retry with the same Idempotency-Key once this one is restarted",
			out.Position, out.Changed, storeReason(stopped))
		return &done
	}
	done.detail = fmt.Sprintf("the write is durable at position %d (changed: %t), but %s; "+
		"retry with the same Idempotency-Key for its answer, or read with min_position=%d",
		out.Position, out.Changed, he.detail, out.Position)
	return &done
}

// committedNotRead is the error of a write whose read of the counts after
// it failed. The event is durable all the same (a node whose log moved back
// under it, WatchHead, still appends), so a views file that cannot be read
// answers as a read model that did not apply the event in time: a 503 that
// names the position and the retry, not a store-unavailable that reads as
// a failed write.
func (s *Server) committedNotRead(err error, out domain.Outcome) error {
	if !errors.Is(err, projections.ErrUnreadable) {
		return fmt.Errorf("read counts after write: %w", err)
	}
	return s.committedNotApplied(errNotCaughtUp("the read model cannot be read: "+err.Error()), out)
}

// set writes req within the user's write rate. A retry of a recorded
// request (its Idempotency-Key) appends nothing, so it is answered its
// first outcome even when the user is over the rate.
func (s *Server) set(ctx context.Context, req domain.SetRequest) (domain.Outcome, error) {
	ok, wait := s.limits.allow(req.User.String(), time.Now())
	if ok {
		return s.deps.Ledger.Set(ctx, req)
	}
	out, recorded, err := s.deps.Ledger.Recorded(ctx, req)
	if err != nil || recorded {
		return out, err
	}
	return domain.Outcome{}, errRateLimited(wait)
}

// parseWrite validates everything before any work: authorization first,
// then path, headers and body.
func (s *Server) parseWrite(r *http.Request, on bool) (domain.SetRequest, error) {
	if err := principalFrom(r.Context()).canActFor(r.PathValue("user"), ScopeWrite); err != nil {
		return domain.SetRequest{}, err
	}
	if err := acceptJSON(r); err != nil {
		return domain.SetRequest{}, err
	}
	p, err := s.newParams(r)
	if err != nil {
		return domain.SetRequest{}, err
	}
	req := domain.SetRequest{
		Target:          p.target(r.PathValue("type"), r.PathValue("id")),
		Kind:            p.kind("kind", r.PathValue("kind")),
		User:            p.user("user", r.PathValue("user")),
		On:              on,
		RequestID:       requestID(r.Context()),
		IdempotencyKey:  p.idempotencyKey(r),
		ExpectedVersion: p.ifMatch(r),
	}
	if err := p.err(); err != nil {
		return req, err
	}
	req.Metadata, err = readMetadata(r)
	return req, err
}
