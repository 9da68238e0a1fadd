package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/interactionledger/ledger/adapters/eventcodec"
	"github.com/interactionledger/ledger/domain"
)

// writeResponse is the body of a write (API.md, "Writes").
type writeResponse struct {
	Changed       bool                  `json:"changed"`
	Target        eventcodec.TargetJSON `json:"target"`
	User          string                `json:"user"`
	Kind          string                `json:"kind"`
	Active        bool                  `json:"active"`
	Viewer        map[string]bool       `json:"viewer"`
	Counts        map[string]int64      `json:"counts"`
	StreamVersion int64                 `json:"stream_version"`
	Position      int64                 `json:"position"`
}

// writeBody is the optional JSON body of a write.
type writeBody struct {
	Metadata map[string]string `json:"metadata"`
}

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

// readMetadata reads the optional body. An empty body is no metadata.
func readMetadata(r *http.Request) (domain.Metadata, error) {
	if r.ContentLength > MaxBodyBytes {
		return domain.Metadata{}, errTooLarge(fmt.Sprintf("the body must be at most %d bytes", MaxBodyBytes))
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return domain.Metadata{}, paramErrors{{Name: "body", Reason: "could not be read"}}
	}
	if len(raw) > MaxBodyBytes {
		return domain.Metadata{}, errTooLarge(fmt.Sprintf("the body must be at most %d bytes", MaxBodyBytes))
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return domain.Metadata{}, nil
	}
	if !isJSON(r.Header.Get("Content-Type")) {
		return domain.Metadata{}, errMediaType("the body must be JSON (Content-Type: application/json)")
	}
	if !utf8.Valid(raw) {
		return domain.Metadata{}, paramErrors{{Name: "body", Reason: "must be UTF-8"}}
	}
	var body writeBody
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return domain.Metadata{}, paramErrors{{Name: "body", Reason: jsonReason(err)}}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return domain.Metadata{}, paramErrors{{Name: "body", Reason: "must be one JSON object"}}
	}
	if key, dup := duplicateKey(raw); dup {
		return domain.Metadata{}, paramErrors{{Name: "body", Reason: fmt.Sprintf("key %q appears twice in one object", clip(key))}}
	}
	if replacedEscape(raw, body.Metadata) {
		return domain.Metadata{}, paramErrors{{Name: "body", Reason: `a \u escape is not a Unicode character (a lone surrogate)`}}
	}
	md, err := domain.NewMetadata(body.Metadata)
	if err != nil {
		return domain.Metadata{}, paramErrors{{Name: "metadata", Reason: validationReason(err)}}
	}
	return md, nil
}

// replacedEscape reports whether decoding turned an escape into U+FFFD:
// encoding/json replaces a lone surrogate (\ud800) instead of failing, so
// the stored metadata would differ from what the client sent. raw is
// valid UTF-8, so a U+FFFD it does not spell out came from an escape.
func replacedEscape(raw []byte, md map[string]string) bool {
	if bytes.ContainsRune(raw, utf8.RuneError) || bytes.Contains(bytes.ToLower(raw), []byte(`\ufffd`)) {
		return false
	}
	for k, v := range md {
		if strings.ContainsRune(k, utf8.RuneError) || strings.ContainsRune(v, utf8.RuneError) {
			return true
		}
	}
	return false
}

// jsonObject is one open object or array while duplicateKey walks a body.
type jsonObject struct {
	keys      map[string]bool // nil for an array
	expectKey bool
}

// duplicateKey returns a key that appears twice in one object of raw,
// which is valid JSON: encoding/json would silently keep the last value,
// so the stored metadata would differ from what the client sent.
func duplicateKey(raw []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var stack []*jsonObject
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].keys != nil {
			stack[n-1].expectKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		switch d := tok.(type) {
		case json.Delim:
			switch d {
			case '{':
				stack = append(stack, &jsonObject{keys: map[string]bool{}, expectKey: true})
			case '[':
				stack = append(stack, &jsonObject{})
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
			continue
		}
		if n := len(stack); n > 0 && stack[n-1].expectKey {
			top := stack[n-1]
			key, _ := tok.(string)
			if top.keys[key] {
				return key, true
			}
			top.keys[key], top.expectKey = true, false
			continue
		}
		valueDone()
	}
}

// jsonReason describes a decode error without echoing unbounded input.
func jsonReason(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("not valid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("%s must be %s", typ.Field, typ.Type)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	return clip(err.Error())
}

func (s *Server) writeResponse(req domain.SetRequest, out domain.Outcome, counts map[string]int64) writeResponse {
	viewer := make(map[string]bool, len(s.cfg.Kinds.Names()))
	for _, k := range s.cfg.Kinds.Kinds() {
		viewer[k.String()] = out.State.Active(k)
	}
	return writeResponse{
		Changed:       out.Changed,
		Target:        targetJSON(req.Target),
		User:          req.User.String(),
		Kind:          req.Kind.String(),
		Active:        out.Active,
		Viewer:        viewer,
		Counts:        s.fullCounts(counts),
		StreamVersion: out.StreamVersion,
		Position:      out.Position,
	}
}

// fullCounts holds every configured kind, zero when the read model has
// none.
func (s *Server) fullCounts(counts map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(s.cfg.Kinds.Names()))
	for _, n := range s.cfg.Kinds.Names() {
		out[n] = counts[n]
	}
	return out
}

func targetJSON(t domain.Target) eventcodec.TargetJSON {
	return eventcodec.TargetJSON{Type: t.Type(), ID: t.ID()}
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	if a, ok := v.(jsonAppender); ok {
		buf := bufPool.Get().(*[]byte)
		b := append(a.appendJSON((*buf)[:0]), '\n')
		sendJSON(w, status, b)
		if cap(b) <= maxPooledBuf {
			*buf = b
			bufPool.Put(buf)
		}
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	sendJSON(w, status, append(b, '\n'))
	return nil
}

func sendJSON(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
