package httpapi

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

// params parses request inputs and collects every problem, so that one 400
// names all of them. Kinds that are well-formed but not configured are kept
// apart: they answer 404.
type params struct {
	bad     paramErrors
	unknown error
	kinds   domain.KindSet
	query   url.Values
}

// newParams starts parsing r's inputs. A query parameter its route does
// not take is 400 (a misspelt min_position would otherwise be ignored, and
// the read could be older than the client's own write), named with the
// ones it takes; log is taken everywhere (Server.sameLog reads it).
func (s *Server) newParams(r *http.Request) (*params, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, paramErrors{{Name: "query", Reason: "not a valid query string"}}
	}
	p := &params{kinds: s.cfg.Kinds, query: q}
	if takes, ok := s.queries[r.Pattern]; ok {
		p.refuseOthers(takes)
	}
	return p, nil
}

// refuseOthers adds a problem for each query parameter not in takes (nor
// log), in name order.
func (p *params) refuseOthers(takes []string) {
	var others []string
	for name := range p.query {
		if name != "log" && !slices.Contains(takes, name) {
			others = append(others, name)
		}
	}
	slices.Sort(others)
	for _, name := range others {
		p.bad = append(p.bad, InvalidParam{Name: clip(name), Reason: notTaken(takes)})
	}
}

// notTaken is the reason a query parameter outside takes is refused.
func notTaken(takes []string) string {
	if len(takes) == 0 {
		return "not a parameter of this route, which takes none but log"
	}
	return "not a parameter of this route, which takes " + strings.Join(takes, ", ") + " and log"
}

// err returns the 400 for malformed input first, then the 404 of an
// unknown kind.
func (p *params) err() error {
	if err := p.bad.err(); err != nil {
		return err
	}
	return p.unknown
}

// one returns the single value of a query parameter; repeating it is 400.
func (p *params) one(name string) (string, bool) {
	vs, ok := p.query[name]
	if !ok {
		return "", false
	}
	if len(vs) != 1 {
		p.bad = append(p.bad, InvalidParam{Name: name, Reason: "must be given once"})
		return "", false
	}
	return vs[0], true
}

// target parses the {type} and {id} path parameters; a 400 names them as
// the route (and the OpenAPI document) does, not as the domain's fields.
// target parses a target given as a path's {type} and {id}: an error
// names the path parameter.
func (p *params) target(typ, id string) domain.Target {
	return p.targetNamed(typ, id, "type", "id")
}

// targetNamed parses a target whose type and id come in the parameters
// named typeName and idName.
func (p *params) targetNamed(typ, id, typeName, idName string) domain.Target {
	t, err := domain.NewTarget(typ, id)
	if err != nil {
		name := validationField(err, "target")
		switch name {
		case "target_type":
			name = typeName
		case "target_id":
			name = idName
		}
		p.bad.add(name, err)
	}
	return t
}

func (p *params) user(name, s string) domain.UserID {
	u, err := domain.NewUserID(s)
	if err != nil {
		p.bad.add(name, err)
	}
	return u
}

func (p *params) kind(name, s string) domain.Kind {
	k, err := p.kinds.Parse(s)
	switch {
	case errors.Is(err, domain.ErrUnknownKind):
		p.unknown = fmt.Errorf("kind %q is not configured (configured: %s): %w",
			s, strings.Join(p.kinds.Names(), ", "), domain.ErrUnknownKind)
	case err != nil:
		p.bad.add(name, err)
	}
	return k
}

// optUser parses an optional user query parameter.
func (p *params) optUser(name string) *domain.UserID {
	s, ok := p.one(name)
	if !ok {
		return nil
	}
	u := p.user(name, s)
	return &u
}

// int parses an optional integer query parameter in [lo, hi].
func (p *params) int(name string, def, lo, hi int64) int64 {
	s, ok := p.one(name)
	if !ok {
		return def
	}
	n, err := parseDecimal(s)
	if err != nil || n < lo || n > hi {
		p.bad = append(p.bad, InvalidParam{Name: name, Reason: fmt.Sprintf("%q must be an integer in %d..%d", clip(s), lo, hi)})
		return def
	}
	return n
}

func (p *params) limit(def, hi int64) int {
	return int(p.int("limit", def, 1, hi))
}

func (p *params) cursor() string {
	s, _ := p.one("cursor")
	if len(s) > 1024 {
		p.bad = append(p.bad, InvalidParam{Name: "cursor", Reason: "too long"})
		return ""
	}
	return s
}

// time parses an optional RFC 3339 query parameter (domain.ParseTime);
// nil when absent or invalid. A '+' in a query decodes as a space: the
// reason quotes the value as received, so that shows.
func (p *params) time(name string) *time.Time {
	s, ok := p.one(name)
	if !ok {
		return nil
	}
	t, err := domain.ParseTime(s)
	if err != nil {
		p.bad = append(p.bad, InvalidParam{Name: name,
			Reason: fmt.Sprintf("%q %v (such as 2026-11-22T10:00:00Z; a '+' in a query must be sent as %%2B)", clip(s), err)})
		return nil
	}
	return &t
}

// minPosition reads min_position or the Ledger-Min-Position header; with
// both, the larger wins.
func (p *params) minPosition(r *http.Request) int64 {
	n := p.int("min_position", 0, 0, math.MaxInt64)
	if vs := r.Header.Values("Ledger-Min-Position"); len(vs) > 0 {
		h, err := parseDecimal(strings.TrimSpace(vs[0]))
		if err != nil || len(vs) > 1 {
			p.bad = append(p.bad, InvalidParam{Name: "Ledger-Min-Position", Reason: headerReason(vs, "an integer in 0..9223372036854775807")})
		}
		n = max(n, h)
	}
	return n
}

// sameLog checks the log a request names, if it names one (the
// Ledger-Log header, the log query parameter, or both): the positions,
// stream versions, cursors and ETags it sends are that log's. A request of
// another log (the server's log was created anew, or it is another
// deployment) is refused with 412 other-log before anything reads them; a
// malformed name is 400.
func (s *Server) sameLog(r *http.Request) error {
	named := r.Header.Values("Ledger-Log")
	if len(named) == 1 && strings.TrimSpace(named[0]) == "" {
		named = nil // an empty header names no log, as an empty Last-Event-ID
	}
	source := "Ledger-Log"
	// Parsed only when it may hold the parameter (spelled plainly or
	// escaped, lo%67=...): most queries are parsed once, by the handler.
	if q := r.URL.RawQuery; strings.Contains(q, "log=") || strings.Contains(q, "%") {
		if q, err := url.ParseQuery(r.URL.RawQuery); err == nil && len(q["log"]) > 0 && !(len(q["log"]) == 1 && q["log"][0] == "") {
			if len(named) > 0 {
				return paramErrors{{Name: "log", Reason: "give the log once, as the Ledger-Log header or the log parameter"}}
			}
			named, source = q["log"], "log"
		}
	}
	if len(named) == 0 {
		return nil
	}
	id, err := uuid.Parse(strings.TrimSpace(named[0]))
	if err != nil || len(named) > 1 {
		return paramErrors{{Name: source, Reason: headerReason(named, "a log id, a UUID")}}
	}
	if !s.logSet.Load() {
		return nil // the log is still opening: the route answers 503 starting
	}
	if id.String() != s.logID {
		return errOtherLog(fmt.Sprintf("the request is of the log %s, and this server's log is %s "+
			"(created anew, or another deployment): its positions, versions and cursors mean nothing here; "+
			"forget them and read again", id, s.logID))
	}
	return nil
}

// headerReason is why a header's values vs are refused: the value as
// sent (clipped), or how many values came, then what it must be.
func headerReason(vs []string, must string) string {
	if len(vs) > 1 {
		return fmt.Sprintf("sent %d times; must be one value, %s", len(vs), must)
	}
	return fmt.Sprintf("%q must be %s", clip(vs[0]), must)
}

// parseDecimal accepts only ASCII digits (no sign, no spaces), so that
// "+1" or "1e3" are rejected like any other malformed number.
func parseDecimal(s string) (int64, error) {
	if len(s) > 19 || !digits(s) {
		return 0, errors.New("not a decimal")
	}
	return strconv.ParseInt(s, 10, 64)
}

// validationField returns the field a *domain.ValidationError names, or
// def.
func validationField(err error, def string) string {
	var v *domain.ValidationError
	if errors.As(err, &v) && v.Field != "" {
		return v.Field
	}
	return def
}

// ifMatch reads If-Match: "v<n>", spelt as the server gives it (entity
// tags compare as strings: "v01" is not the tag of version 1). An absent
// header is nil.
func (p *params) ifMatch(r *http.Request) *int64 {
	vs := r.Header.Values("If-Match")
	if len(vs) == 0 {
		return nil
	}
	s := strings.TrimSpace(vs[0])
	var n int64
	err := errors.New("not an entity tag")
	if len(vs) == 1 && len(s) >= 4 && s[0] == '"' && s[1] == 'v' && s[len(s)-1] == '"' {
		n, err = parseDecimal(s[2 : len(s)-1])
	}
	if err == nil && s != `"v`+strconv.FormatInt(n, 10)+`"` {
		err = errors.New("leading zeros")
	}
	if err != nil {
		p.bad = append(p.bad, InvalidParam{Name: "If-Match", Reason: headerReason(vs, `an entity tag "v<stream_version>"`)})
		return nil
	}
	return &n
}

// idempotencyKey reads Idempotency-Key: absent is "".
func (p *params) idempotencyKey(r *http.Request) string {
	vs := r.Header.Values("Idempotency-Key")
	if len(vs) == 0 {
		return ""
	}
	if len(vs) > 1 || vs[0] == "" {
		p.bad = append(p.bad, InvalidParam{Name: "Idempotency-Key", Reason: headerReason(vs, "1..128 visible ASCII characters")})
		return ""
	}
	if err := domain.ValidateIdempotencyKey(vs[0]); err != nil {
		p.bad = append(p.bad, InvalidParam{Name: "Idempotency-Key", Reason: validationReason(err)})
		return ""
	}
	return vs[0]
}

func validationReason(err error) string {
	var v *domain.ValidationError
	if errors.As(err, &v) {
		return v.Reason
	}
	return err.Error()
}

// targetList parses the repeated t=type/id parameter (1..200) of the
// batch read, which answers each t in its place: a target given twice is
// answered twice (a feed page may show an item twice).
func (p *params) targetList() []domain.Target {
	raw := p.query["t"]
	if len(raw) == 0 || len(raw) > projections.MaxTargets {
		p.bad = append(p.bad, InvalidParam{Name: "t", Reason: fmt.Sprintf("give 1..%d targets as t=type/id", projections.MaxTargets)})
		return nil
	}
	return p.targets(raw, false)
}

// targets parses the values of a repeated t=type/id, in order: a malformed
// one is 400 naming it, and so is one given twice when once is its only
// sense (the stream's set of targets). The callers bound how many.
func (p *params) targets(raw []string, once bool) []domain.Target {
	ts := make([]domain.Target, 0, len(raw))
	for _, v := range raw {
		t, err := domain.ParseTarget(v)
		switch {
		case err != nil:
			p.bad.add("t", err)
		case once && slices.Contains(ts, t):
			p.bad = append(p.bad, InvalidParam{Name: "t", Reason: fmt.Sprintf("%q is given twice", clip(v))})
		default:
			ts = append(ts, t)
		}
	}
	return ts
}
