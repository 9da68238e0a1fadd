package httpapi

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
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
	return s.newParams(r)
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
	etag := s.etag(view, viewer)
	w.Header().Set("ETag", etag)
	if etagMatch(r.Header.Values("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	return writeJSON(w, http.StatusOK, s.targetResponse(view, viewer != nil))
}

// etag names a representation: the log and the kinds configured
// (etagTag), the last position that touched the target, a digest of the
// counts and the viewer's flags, and the viewer. The position alone does
// not tell two representations apart: a log restored from an older copy
// keeps its identity, and its next event can take a position the old log
// had given another event of the same target, so an ETag from before the
// restore revalidated other counts.
func (s *Server) etag(v projections.TargetView, viewer *domain.UserID) string {
	b := make([]byte, 0, 64)
	b = append(b, '"')
	b = append(b, s.etagTag...)
	b = append(b, '.')
	b = strconv.AppendInt(b, v.Position, 10)
	b = append(b, '.')
	b = appendDigest(b, v, s.kindOrder, viewer != nil)
	if viewer != nil {
		b = append(b, '.')
		b = append(b, viewer.String()...)
	}
	return string(append(b, '"'))
}

// appendDigest appends 16 hex digits of FNV-1a over v's count of each kind
// in order and, withViewer, the viewer's flag of each.
func appendDigest(b []byte, v projections.TargetView, order []string, withViewer bool) []byte {
	h := fnv.New64a()
	var word [9]byte
	for _, k := range order {
		binary.BigEndian.PutUint64(word[:8], uint64(v.Counts[k]))
		word[8] = 0
		if withViewer && v.Viewer[k] {
			word[8] = 1
		}
		h.Write(word[:])
	}
	return hex.AppendEncode(b, h.Sum(nil))
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
	at, err := projections.ActorsCursorAt(t, k, cursor)
	if err != nil {
		return cursorError(err)
	}
	if _, err := s.beginRead(w, r, max(minPos, at)); err != nil {
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
	p, err := s.newParams(r)
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
	at, err := projections.CollectionCursorAt(u, k, typ, cursor)
	if err != nil {
		return cursorError(err)
	}
	if _, err := s.beginRead(w, r, max(minPos, at)); err != nil {
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

// cursorError names the cursor in the 400 of a rejected cursor. A list
// checks its cursor before it waits: the next page is read at or after the
// position its cursor's page was read at (projections.ActorsCursorAt), as
// for min_position.
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
