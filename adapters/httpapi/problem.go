package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type          string         `json:"type"`
	Title         string         `json:"title"`
	Status        int            `json:"status"`
	Detail        string         `json:"detail,omitempty"`
	InvalidParams []InvalidParam `json:"invalid_params,omitempty"`
	// Position, in a write's 503 not-caught-up, is the position of the
	// write's durable event (0: none): the write is done, and a read with
	// min_position=Position shows it once the read model has applied it.
	// In a 412 precondition-failed it is the position of the stream's last
	// event (0: none), which a read with min_position shows.
	Position int64 `json:"position,omitempty"`
	// StreamVersion, in a 412 precondition-failed, is the stream's version
	// when the write was refused: the If-Match a retry would send.
	StreamVersion *int64 `json:"stream_version,omitempty"`
	// Head, in a 412 position-beyond-log, is the log's head when the
	// request was refused: positions up to it are this log's.
	Head *int64 `json:"head,omitempty"`
	// DifferingFields, in a 422 idempotency-key-reused, names what of the
	// request differs from the first request recorded under its key
	// (method, target, kind, if_match, metadata); absent when the record
	// does not say (written by an older server). In that problem Position
	// is the first request's outcome position.
	DifferingFields []string `json:"differing_fields,omitempty"`
	// RetryAfter, when positive, is sent as the Retry-After header.
	RetryAfter time.Duration `json:"-"`
}

// InvalidParam names one rejected input of a 400 problem.
type InvalidParam struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// httpError is an error that already knows its status: authentication,
// negotiation, size limits and routing failures, which the domain knows
// nothing about.
type httpError struct {
	status     int
	slug       string
	detail     string
	retryAfter time.Duration
	position   int64  // Problem.Position
	head       *int64 // Problem.Head
}

func (e *httpError) Error() string { return e.detail }

func errUnauthorized(d string) error { return &httpError{status: 401, slug: "unauthorized", detail: d} }
func errForbidden(d string) error    { return &httpError{status: 403, slug: "forbidden", detail: d} }
func errNotAcceptable(d string) error {
	return &httpError{status: 406, slug: "not-acceptable", detail: d}
}
func errTooLarge(d string) error { return &httpError{status: 413, slug: "body-too-large", detail: d} }
func errMediaType(d string) error {
	return &httpError{status: 415, slug: "unsupported-media-type", detail: d}
}
func errRateLimited(wait time.Duration) error {
	return &httpError{status: 429, slug: "rate-limited", detail: "over the per-user write rate", retryAfter: wait}
}
func errNotCaughtUp(d string) error {
	return &httpError{status: 503, slug: "not-caught-up", detail: d, retryAfter: time.Second}
}
func errOtherLog(d string) error { return &httpError{status: 412, slug: "other-log", detail: d} }

// errBeyondHead refuses a position beyond the log's head, what naming it
// ("position 9", "after 9").
func errBeyondHead(what string, head int64) error {
	d := fmt.Sprintf("%s is beyond this log's head %d: the log was restored from an older copy, or the position is not of this log", what, head)
	return &httpError{status: 412, slug: "position-beyond-log", detail: d, head: &head}
}
func errShuttingDown() error {
	return &httpError{status: 503, slug: "shutting-down", detail: "the server is shutting down", retryAfter: time.Second}
}

// paramErrors collects every invalid input of a request, so that one 400
// names them all.
type paramErrors []InvalidParam

func (p paramErrors) Error() string {
	if len(p) == 0 {
		return "invalid input"
	}
	return "invalid " + p[0].Name + ": " + p[0].Reason
}

func (p paramErrors) Is(target error) bool { return target == domain.ErrInvalidInput }

// add records err (a *domain.ValidationError or any error) against name.
func (p *paramErrors) add(name string, err error) {
	reason := err.Error()
	var v *domain.ValidationError
	if errors.As(err, &v) {
		reason = v.Reason
	}
	*p = append(*p, InvalidParam{Name: name, Reason: reason})
}

func (p paramErrors) err() error {
	if len(p) == 0 {
		return nil
	}
	return p
}

// problemFor is the one mapping of errors to HTTP statuses; write says
// whether the request was a write (a storage fault's answer says what
// the store cannot do: a read's is not that it cannot take writes).
func problemFor(err error, write bool) Problem {
	var he *httpError
	var pe paramErrors
	var ve *domain.ValidationError
	var sv *domain.StoredValueError
	var stale *domain.StaleVersionError
	switch {
	case errors.As(err, &he):
		p := newProblem(he.status, he.slug, he.detail, he.retryAfter)
		p.Position, p.Head = he.position, he.head
		return p
	case errors.As(err, &pe):
		p := newProblem(400, "invalid-input", pe.Error(), 0)
		p.InvalidParams = pe
		return p
	case errors.As(err, &ve):
		p := newProblem(400, "invalid-input", ve.Error(), 0)
		p.InvalidParams = []InvalidParam{{Name: ve.Field, Reason: ve.Reason}}
		return p
	case errors.Is(err, domain.ErrInvalidInput):
		p := newProblem(400, "invalid-input", err.Error(), 0)
		p.InvalidParams = []InvalidParam{{Name: "request", Reason: err.Error()}}
		return p
	case errors.Is(err, domain.ErrUnknownKind):
		return newProblem(404, "unknown-kind", err.Error(), 0)
	case errors.Is(err, domain.ErrNotFound):
		return newProblem(404, "not-found", err.Error(), 0)
	case errors.As(err, &stale):
		p := newProblem(412, "precondition-failed", fmt.Sprintf("the stream is at version %d, not at the If-Match version %d", stale.Stream.Version, stale.Expected), 0)
		p.StreamVersion, p.Position = &stale.Stream.Version, stale.Stream.LastPosition
		return p
	case errors.Is(err, domain.ErrPreconditionFailed):
		return newProblem(412, "precondition-failed", "the stream is not at the If-Match version", 0)
	case errors.Is(err, domain.ErrIdempotencyMismatch):
		return keyReused(err)
	case errors.Is(err, domain.ErrVersionConflict):
		return newProblem(503, "contention", "the stream is busy; retry", time.Second)
	case errors.Is(err, projections.ErrUnreadable):
		return newProblem(503, "store-unavailable", "the read model cannot be read right now"+storeReason(err), 5*time.Second)
	case errors.As(err, &sv):
		return newProblem(503, "store-unavailable", "the event log holds a value this server cannot read: "+sv.What, 5*time.Second)
	case errors.Is(err, domain.ErrUnavailable):
		what := "cannot be read"
		if write {
			what = "cannot accept writes"
		}
		return newProblem(503, "store-unavailable", "the event store "+what+" right now"+storeReason(err), 5*time.Second)
	case errors.Is(err, domain.ErrClosed):
		return newProblem(503, "shutting-down", "the server is shutting down", time.Second)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return newProblem(503, "timeout", "the request did not complete in time", time.Second)
	}
	return newProblem(500, "internal", "internal error; it has been logged", 0)
}

// requestFields names the fields of a domain.IdempotencyMismatchError as
// a client sent them.
var requestFields = map[string]string{
	"on": "method", "target": "target", "kind": "kind", "expected_version": "if_match", "metadata": "metadata",
}

// keyReused is the 422 of an Idempotency-Key reused with another request:
// it names what differs and the first request's position, never a value.
func keyReused(err error) Problem {
	p := newProblem(422, "idempotency-key-reused", "this Idempotency-Key was used with a different request", 0)
	var mm *domain.IdempotencyMismatchError
	if !errors.As(err, &mm) {
		return p
	}
	p.Position = mm.Position
	for _, f := range mm.Fields {
		p.DifferingFields = append(p.DifferingFields, requestFields[f])
	}
	if len(p.DifferingFields) > 0 {
		p.Detail += ": its " + strings.Join(p.DifferingFields, ", ") + " differ from the first request's"
	} else {
		p.Detail += " (its record does not say what differs)"
	}
	if mm.Position > 0 {
		p.Detail += fmt.Sprintf(", whose outcome is at position %d", mm.Position)
	}
	return p
}

// storeReason is ": <reason>" when a storage fault says what it is (disk
// full, read-only...), so that an operator reading the answer knows.
func storeReason(err error) string {
	var r interface{ Reason() string }
	if errors.As(err, &r) && r.Reason() != "" {
		return ": " + r.Reason()
	}
	return ""
}

func newProblem(status int, slug, detail string, retry time.Duration) Problem {
	return Problem{
		Type: "urn:ledger:problem:" + slug, Title: http.StatusText(status),
		Status: status, Detail: detail, RetryAfter: retry,
	}
}

// writeProblem answers with p, declaring its length: a HEAD answer then
// carries GET's Content-Length whatever the problem's size (net/http
// measures only a body that fits its buffer). Headers already set (Allow,
// Ledger-Position, X-Request-ID) are kept.
func writeProblem(w http.ResponseWriter, p Problem) {
	b, _ := json.Marshal(p)
	b = append(b, '\n')
	h := w.Header()
	h.Del("ETag")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if p.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(retryAfterSeconds(p.RetryAfter), 10))
	}
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="ledger"`)
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write(b)
}

// maxRetryAfter caps Retry-After: a wait this long (a write rate so low
// that the limiter says "never") is as good as never to a client.
const maxRetryAfter = 24 * time.Hour

// retryAfterSeconds rounds a positive wait up to whole seconds, at most
// maxRetryAfter's (rounding up a wait near the largest Duration overflowed
// to a negative Retry-After).
func retryAfterSeconds(d time.Duration) int64 {
	if d >= maxRetryAfter {
		return int64(maxRetryAfter / time.Second)
	}
	return int64((d + time.Second - 1) / time.Second)
}

// clientClosed is the status a request is recorded with (in the metrics
// and the access log; nobody reads the answer) when its client went away
// before it was answered: nginx's 499 "client closed request", so that a
// client hanging up is not counted as a 503 of the server.
const clientClosed = 499

// fail maps err to a problem, answers with it and logs what a 500 hides.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if info := infoFrom(r.Context()); info != nil {
		info.err = err
	}
	if errors.Is(err, context.Canceled) && errors.Is(r.Context().Err(), context.Canceled) {
		w.WriteHeader(clientClosed)
		return
	}
	p := problemFor(err, r.Method != http.MethodGet && r.Method != http.MethodHead)
	if p.Status >= 500 {
		lvl := slog.LevelWarn
		if p.Status == 500 {
			lvl = slog.LevelError
		}
		s.log.Log(r.Context(), lvl, "request failed", "request_id", requestID(r.Context()), "status", p.Status, "err", err)
	}
	writeProblem(w, p)
}
