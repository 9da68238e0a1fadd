package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/interactionledger/ledger/domain"
)

// fuzzHeaders are the request headers FuzzRequest sets, picked by index.
var fuzzHeaders = []string{"If-Match", "Idempotency-Key", "Ledger-Min-Position", "Accept", "Last-Event-ID", "If-None-Match", "X-Request-ID", "Authorization"}

// FuzzRequest sends arbitrary request lines (method, path with ids,
// query), one arbitrary header, content type and body through the real
// handler over a real store. Whatever the wire parser accepts must get an
// answer the OpenAPI document lists for its route (404 or 405 for a path
// no route takes), never a 5xx but the documented 503, every error a
// problem whose status matches, with invalid_params on a 400; and a
// request answered 4xx, or any read, appended nothing (the log's head
// is where it was).
func FuzzRequest(f *testing.F) {
	e := MustEnv(f, func(c *Config) { c.ConsistencyTimeout = 20 * time.Millisecond })
	documented := documentedStatuses(f)
	seeds := []struct {
		method, target string
		header         uint8
		value, ct      string
		body           string
	}{
		{"PUT", "/v1/targets/article/a-1/like/u42", 0, `"v0"`, "application/json", `{"metadata":{"source":"web"}}`},
		{"DELETE", "/v1/targets/article/a-1/collect/u42", 1, "key-1", "", ""},
		{"GET", "/v1/targets/article/a-1?viewer=u42&min_position=1", 2, "1", "", ""},
		{"GET", "/v1/targets?t=article/a-1&t=post/p%2F1", 3, "text/csv", "", ""},
		{"GET", "/v1/targets/article/a-1/like?limit=0&cursor=AAAA", 5, "*", "", ""},
		{"GET", "/v1/users/u%00/like?type=Article", 6, "id", "", ""},
		{"GET", "/v1/events?after=-1&since=x", 3, "application/x-ndjson", "", ""},
		{"GET", "/v1/events/stream?after=0", 4, "1", "", ""},
		{"PUT", "/v1/targets/article/%E2%80%AEa/like/u", 0, "*", "text/plain", "{"},
		{"PUT", "/v1/targets/a/b/like/../u", 7, "Bearer x", "application/json", `{"metadata":{"a":"1","a":"2"}}`},
	}
	for _, s := range seeds {
		f.Add(s.method, s.target, s.header, s.value, s.ct, s.body)
	}
	f.Fuzz(func(t *testing.T, method, target string, header uint8, value, ct, body string) {
		r := mustWireRequest(t, method, target, fuzzHeaders[int(header)%len(fuzzHeaders)], value, ct, body)
		if r == nil {
			return // the HTTP parser rejects it before the handler runs
		}
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		before := mustHead(t, e.store)
		rec := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(rec, r.WithContext(ctx))
		checkAnswer(t, rec, r)
		if want := documented.of(r, body != ""); !want[rec.Code] {
			t.Fatalf("%s %q: %d, not one the OpenAPI document lists for it (%v)", r.Method, r.RequestURI, rec.Code, slices.Sorted(maps.Keys(want)))
		}
		write := r.Method == http.MethodPut || r.Method == http.MethodDelete
		if after := mustHead(t, e.store); after != before && (!write || rec.Code >= 400 && rec.Code < 500) {
			t.Fatalf("%s %q: %d, and the log's head moved from %d to %d", r.Method, r.RequestURI, rec.Code, before, after)
		}
	})
}

// routeStatuses maps "METHOD /path/{template}" to the statuses the OpenAPI
// document lists for it.
type routeStatuses map[string]map[int]bool

// documentedStatuses reads the statuses of every operation of the
// embedded OpenAPI document.
func documentedStatuses(tb testing.TB) routeStatuses {
	tb.Helper()
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]json.RawMessage `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		tb.Fatal(err)
	}
	out := routeStatuses{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			for code := range op.Responses {
				n, err := strconv.Atoi(code)
				if err != nil {
					continue // "parameters", a "default" response
				}
				key := strings.ToUpper(method) + " " + path
				if out[key] == nil {
					out[key] = map[int]bool{}
				}
				out[key][n] = true
			}
		}
	}
	return out
}

// of returns the statuses documented for r's route: 400 for a path that
// is not clean or no path at all (docs/api.md), else those of the
// operation whose path template matches r's path segment by segment (a
// {name} any segment), else 405 when a template matches with another
// method, else 404; and 400 for a GET or HEAD with a body, whatever the
// path (docs/api.md).
func (rs routeStatuses) of(r *http.Request, body bool) map[int]bool {
	codes := rs.ofPath(r)
	if body && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		codes = maps.Clone(codes)
		codes[400] = true
	}
	return codes
}

// ofPath is of for a request without a body.
func (rs routeStatuses) ofPath(r *http.Request) map[int]bool {
	if unclean(r.URL.Path) {
		return map[int]bool{400: true}
	}
	segs := strings.Split(r.URL.EscapedPath(), "/")
	pathKnown := false
	for key, codes := range rs {
		method, template, _ := strings.Cut(key, " ")
		if !templateMatches(strings.Split(template, "/"), segs) {
			continue
		}
		if method == r.Method {
			return codes
		}
		pathKnown = true
	}
	if pathKnown {
		return map[int]bool{405: true}
	}
	return map[int]bool{404: true}
}

// unclean reports whether p is what docs/api.md calls an unclean path
// (`//`, `/./`, `/../`) or no path (`*`).
func unclean(p string) bool {
	segs := strings.Split(p, "/")
	if segs[0] != "" || len(segs) < 2 {
		return true
	}
	for i, seg := range segs[1:] {
		if seg == "." || seg == ".." || seg == "" && i < len(segs)-2 {
			return true
		}
	}
	return false
}

// templateMatches reports whether the escaped path segments segs fit the
// template's segments.
func templateMatches(template, segs []string) bool {
	if len(template) != len(segs) {
		return false
	}
	for i, t := range template {
		seg, err := url.PathUnescape(segs[i])
		if err != nil {
			return false
		}
		if strings.HasPrefix(t, "{") && seg != "" {
			continue
		}
		if t != seg {
			return false
		}
	}
	return true
}

// mustWireRequest parses the request as the server's HTTP/1.1 parser
// would; nil means the parser refuses it.
func mustWireRequest(t *testing.T, method, target, name, value, ct, body string) *http.Request {
	t.Helper()
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n")
	b.WriteString(name + ": " + value + "\r\n")
	if ct != "" {
		b.WriteString("Content-Type: " + ct + "\r\n")
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(b.String())))
	if err != nil {
		return nil
	}
	return r
}

// checkAnswer fails on a 5xx other than 503 and on an error that is not a
// well-formed problem.
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder, r *http.Request) {
	t.Helper()
	status := rec.Code
	if status >= 500 && status != 503 {
		t.Fatalf("%s %q: %d %s", r.Method, r.RequestURI, status, rec.Body)
	}
	if status < 400 {
		return
	}
	var p Problem
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%s %q: %d with Content-Type %q", r.Method, r.RequestURI, status, ct)
	}
	if r.Method == http.MethodHead {
		return
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != status {
		t.Fatalf("%s %q: %d with problem %s (%v)", r.Method, r.RequestURI, status, rec.Body, err)
	}
	if status == 400 && len(p.InvalidParams) == 0 {
		t.Fatalf("%s %q: 400 without invalid_params: %s", r.Method, r.RequestURI, rec.Body)
	}
}

// FuzzWriteBody decodes arbitrary write bodies: either metadata the domain
// accepts, or a 400 naming body/metadata, a 413 or a 415; never a panic.
func FuzzWriteBody(f *testing.F) {
	for _, s := range []string{"", " ", "{}", `{"metadata":{"source":"web"}}`, `{"metadata":null}`, `{"metadata":{"a":1}}`,
		`{"metadata":{"a":"1"},"x":1}`, `{"metadata":{"a":"1","a":"2"}}`, `{"metadata":{}} {}`, "[", `"\ud800"`,
		strings.Repeat("[", 5000), `{"metadata":{"` + strings.Repeat("k", 300) + `":"v"}}`, "\xef\xbb\xbf{}"} {
		f.Add("application/json", s)
	}
	f.Add("text/plain", "{}")
	f.Add("application/merge-patch+json; charset=utf-8", "{}")
	f.Fuzz(func(t *testing.T, ct, body string) {
		r := newRequest(http.MethodPut, "/v1/targets/article/a-1/like/u1", strings.NewReader(body))
		r.Header.Set("Content-Type", ct)
		md, err := readMetadata(r)
		if err == nil {
			// What is stored must be what was sent.
			var sent writeBody
			_ = json.Unmarshal([]byte(body), &sent)
			if want, err := domain.NewMetadata(sent.Metadata); err != nil || !md.Equal(want) {
				t.Fatalf("accepted metadata %v, but the body holds %v (%v)", md, sent.Metadata, err)
			}
			return
		}
		p := problemFor(err, false)
		switch p.Status {
		case 413, 415:
		case 400:
			if len(p.InvalidParams) == 0 || (p.InvalidParams[0].Name != "body" && p.InvalidParams[0].Name != "metadata") {
				t.Fatalf("400 without the body named: %+v", p)
			}
		default:
			t.Fatalf("body %q: status %d (%v)", body, p.Status, errors.Unwrap(err))
		}
	})
}

// TestStrictShape: what encoding/json lets through is found: a key
// repeated in one object at any depth (the same key in different objects
// is fine), a body field other than "metadata" in exactly that case, and
// null anywhere.
func TestStrictShape(t *testing.T) {
	for body, want := range map[string]string{
		`{"metadata":{"a":"1","a":"2"}}`:               "appears twice",
		`{"metadata":{"a":"1"},"metadata":{}}`:         "appears twice",
		`[{"a":1},{"a":2},{"b":{"a":1,"a":2}}]`:        "appears twice",
		`{"metadata":{"a":"1","b":"a"}}`:               "",
		`{"metadata":{"metadata":"x","METADATA":"y"}}`: "",
		`[1,"a","a"]`:            "",
		`{"METADATA":{"a":"1"}}`: `unknown field "METADATA"`,
		`{"metadata":{"a":"1"},"Metadata":{"b":"2"}}`: `unknown field "Metadata"`,
		`{"metadata":{"a":null}}`:                     "null",
		`{"metadata":null}`:                           "null",
	} {
		reason, bad := strictShape([]byte(body))
		if bad != (want != "") || !strings.Contains(reason, want) {
			t.Errorf("strictShape(%s) = %q, %v; want %q", body, reason, bad, want)
		}
	}
}

// TestBodyReasons: a body of the wrong JSON shape is named in the client's
// terms (JSON kinds), never by a Go type.
func TestBodyReasons(t *testing.T) {
	for body, want := range map[string]string{
		`[]`:                   "must be a JSON object",
		`"x"`:                  "not string",
		`1e999`:                "must be a JSON object",
		`{"metadata":[]}`:      "metadata must be an object of strings, not array",
		`{"metadata":{"a":1}}`: "must be a string, not number",
	} {
		r := newRequest(http.MethodPut, "/v1/targets/article/a-1/like/u1", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		_, err := readMetadata(r)
		p := problemFor(err, false)
		if p.Status != 400 || len(p.InvalidParams) != 1 || !strings.Contains(p.InvalidParams[0].Reason, want) ||
			strings.Contains(p.InvalidParams[0].Reason, "httpapi.") || strings.Contains(p.InvalidParams[0].Reason, "map[") {
			t.Errorf("body %s: %d %+v, want a reason with %q", body, p.Status, p.InvalidParams, want)
		}
	}
}

// TestLoneSurrogateRefused: a \u escape of half a UTF-16 pair is 400
// wherever it is, also in a body that spells out U+FFFD elsewhere (which
// let the surrogate through, stored as U+FFFD: not what was sent); a
// whole pair is a character.
func TestLoneSurrogateRefused(t *testing.T) {
	for body, bad := range map[string]bool{
		`{"metadata":{"a":"\ud800"}}`:                         true,
		`{"metadata":{"a":"\ufffd","b":"\ud800"}}`:            true,
		`{"metadata":{"a":"\uFFFD","b":"x\udc00y"}}`:          true,
		"{\"metadata\":{\"a\":\"\uFFFD\",\"b\":\"\\ud83d\"}}": true,
		`{"metadata":{"a":"\ufffd","b":"\ud83d\ude00"}}`:      false,
		`{"metadata":{"a":"\\ud800"}}`:                        false,
	} {
		r := newRequest(http.MethodPut, "/v1/targets/article/a-1/like/u1", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		_, err := readMetadata(r)
		if refused := err != nil && problemFor(err, false).Status == 400; refused != bad {
			t.Errorf("body %s: %v, want refused %v", body, err, bad)
		}
	}
}
