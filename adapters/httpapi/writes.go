package httpapi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/interactionledger/ledger/domain"
)

// write returns the handler of PUT (on) or DELETE (off).
func (s *Server) write(on bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		req, err := s.parseWrite(r, on)
		if err != nil {
			return err
		}
		if ok, wait := s.limits.allow(req.User.String(), time.Now()); !ok {
			return errRateLimited(wait)
		}
		out, err := s.deps.Ledger.Set(r.Context(), req)
		if err != nil {
			return err
		}
		if out.Changed {
			s.metrics.advanceHead(out.Position)
		}
		if err := s.ready(r.Context(), out.Position); err != nil {
			return err
		}
		view, err := s.deps.Read.Target(r.Context(), req.Target, nil)
		if err != nil {
			return fmt.Errorf("read counts after write: %w", err)
		}
		w.Header().Set("Ledger-Position", fmt.Sprint(out.Position))
		return writeJSON(w, http.StatusOK, s.writeResponse(req, out, view.Counts))
	}
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
	p, err := newParams(r, s.cfg.Kinds)
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
