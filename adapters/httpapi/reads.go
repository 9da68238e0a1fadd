package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

// beginRead authorizes a read, waits for the read model to reach minPos
// (and the start head) and sets the headers every read carries. It returns
// the applied position the answer reflects at least.
func (s *Server) beginRead(w http.ResponseWriter, r *http.Request, minPos int64) (int64, error) {
	w.Header().Set("Cache-Control", "no-cache")
	if err := s.ready(r.Context(), minPos); err != nil {
		return 0, err
	}
	applied := s.deps.Read.Applied()
	w.Header().Set("Ledger-Position", strconv.FormatInt(applied, 10))
	return applied, nil
}

// readParams checks what every JSON read checks first (the read scope, an
// Accept that allows JSON) and starts parsing its parameters.
func (s *Server) readParams(r *http.Request) (*params, error) {
	if err := s.canRead(r); err != nil {
		return nil, err
	}
	if err := acceptJSON(r); err != nil {
		return nil, err
	}
	return newParams(r, s.cfg.Kinds)
}

func (s *Server) canRead(r *http.Request) error {
	if !principalFrom(r.Context()).canRead() {
		return errForbidden("this token lacks the read scope")
	}
	return nil
}

func (s *Server) target(w http.ResponseWriter, r *http.Request) error {
	p, err := s.readParams(r)
	if err != nil {
		return err
	}
	t := p.target(r.PathValue("type"), r.PathValue("id"))
	viewer := p.optUser("viewer")
	minPos := p.minPosition(r)
	if err := p.err(); err != nil {
		return err
	}
	if _, err := s.beginRead(w, r, minPos); err != nil {
		return err
	}
	view, err := s.deps.Read.Target(r.Context(), t, viewer)
	if err != nil {
		return fmt.Errorf("read target: %w", err)
	}
	etag := s.etag(view.Position, viewer)
	w.Header().Set("ETag", etag)
	if etagMatch(r.Header.Values("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	return writeJSON(w, http.StatusOK, s.targetResponse(view, viewer != nil))
}

// etag names a representation: the kinds configured, the last position
// that touched the target, and the viewer (whose state only events of
// this target change).
func (s *Server) etag(pos int64, viewer *domain.UserID) string {
	if viewer == nil {
		return fmt.Sprintf(`"%s.%d"`, s.etagTag, pos)
	}
	return fmt.Sprintf(`"%s.%d.%s"`, s.etagTag, pos, viewer)
}

// etagMatch applies If-None-Match's weak comparison.
func etagMatch(headers []string, etag string) bool {
	for _, h := range headers {
		for tag := range strings.SplitSeq(h, ",") {
			tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
			if tag == "*" || tag == etag {
				return true
			}
		}
	}
	return false
}

func (s *Server) targets(w http.ResponseWriter, r *http.Request) error {
	p, err := s.readParams(r)
	if err != nil {
		return err
	}
	ts := p.targetList()
	viewer := p.optUser("viewer")
	minPos := p.minPosition(r)
	if err := p.err(); err != nil {
		return err
	}
	applied, err := s.beginRead(w, r, minPos)
	if err != nil {
		return err
	}
	views, err := s.deps.Read.Targets(r.Context(), ts, viewer)
	if err != nil {
		return fmt.Errorf("read targets: %w", err)
	}
	out := batchResponse{Items: make([]targetResponse, len(views)), Position: applied}
	for i, v := range views {
		out.Items[i] = s.targetResponse(v, viewer != nil)
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) actors(w http.ResponseWriter, r *http.Request) error {
	p, err := s.readParams(r)
	if err != nil {
		return err
	}
	t := p.target(r.PathValue("type"), r.PathValue("id"))
	k := p.kind("kind", r.PathValue("kind"))
	limit, cursor, minPos := p.limit(projections.DefaultLimit, projections.MaxLimit), p.cursor(), p.minPosition(r)
	if err := p.err(); err != nil {
		return err
	}
	if _, err := s.beginRead(w, r, minPos); err != nil {
		return err
	}
	page, err := s.deps.Read.Actors(r.Context(), t, k, limit, cursor)
	if err != nil {
		return cursorError(err)
	}
	out := pageResponse[actorJSON]{Items: make([]actorJSON, len(page.Items)), NextCursor: page.Next}
	for i, a := range page.Items {
		out.Items[i] = actorJSON{User: a.User.String(), Since: formatTime(a.Since)}
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) collection(w http.ResponseWriter, r *http.Request) error {
	if err := principalFrom(r.Context()).canActFor(r.PathValue("user"), ScopeRead); err != nil {
		return err
	}
	if err := acceptJSON(r); err != nil {
		return err
	}
	p, err := newParams(r, s.cfg.Kinds)
	if err != nil {
		return err
	}
	u := p.user("user", r.PathValue("user"))
	k := p.kind("kind", r.PathValue("kind"))
	typ, given := p.one("type")
	if given { // type= (empty) is a bad value, like every other empty parameter
		if err := domain.ValidateTargetType(typ); err != nil {
			p.bad.add("type", err)
		}
	}
	limit, cursor, minPos := p.limit(projections.DefaultLimit, projections.MaxLimit), p.cursor(), p.minPosition(r)
	if err := p.err(); err != nil {
		return err
	}
	if _, err := s.beginRead(w, r, minPos); err != nil {
		return err
	}
	page, err := s.deps.Read.Collection(r.Context(), u, k, typ, limit, cursor)
	if err != nil {
		return cursorError(err)
	}
	out := pageResponse[itemJSON]{Items: make([]itemJSON, len(page.Items)), NextCursor: page.Next}
	for i, it := range page.Items {
		out.Items[i] = itemJSON{Target: targetJSON(it.Target), Since: formatTime(it.Since)}
	}
	return writeJSON(w, http.StatusOK, out)
}

// cursorError names the cursor in the 400 of a rejected cursor.
func cursorError(err error) error {
	var v *domain.ValidationError
	if errors.As(err, &v) && v.Field == "cursor" {
		return paramErrors{{Name: "cursor", Reason: v.Reason}}
	}
	if errors.Is(err, domain.ErrInvalidInput) {
		return paramErrors{{Name: "cursor", Reason: "not a cursor issued for this list"}}
	}
	return fmt.Errorf("read page: %w", err)
}
