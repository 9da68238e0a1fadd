// The OpenAPI validator is a large dependency: fuzzing builds this
// package's tests with coverage instrumentation, and the fuzz run (tag
// fuzzbuild, scripts/fuzz.sh) leaves these tests out rather than
// instrument it. `make test-unit` runs them.

//go:build !fuzzbuild

package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/interactionledger/ledger/domain"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	liberrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/paths"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
)

// contract is the served OpenAPI document, parsed and checked by
// libopenapi: a validator of responses, and the model for the schemas of
// what the response validator cannot take (NDJSON lines, unrouted paths).
type contract struct {
	v     validator.Validator
	model *v3.Document
}

// mustContract fetches /openapi.json, parses it with libopenapi and checks
// it against the OpenAPI 3.1 specification's schema.
func mustContract(t *testing.T, e *testEnv) contract {
	t.Helper()
	b := e.expect(200, "GET", "/openapi.json", "")
	doc, err := libopenapi.NewDocument(b)
	if err != nil {
		t.Fatalf("parse /openapi.json: %v", err)
	}
	if v := doc.GetVersion(); v != "3.1.0" {
		t.Fatalf("openapi %q", v)
	}
	m, err := doc.BuildV3Model()
	if err != nil {
		t.Fatalf("build the model of /openapi.json: %v", err)
	}
	v := validator.NewValidatorFromV3Model(&m.Model)
	v.SetDocument(doc)
	if ok, errs := v.ValidateDocument(); !ok {
		reportErrors(t, "/openapi.json", errs)
		t.FailNow()
	}
	return contract{v: v, model: &m.Model}
}

func reportErrors(t *testing.T, what string, errs []*liberrors.ValidationError) {
	t.Helper()
	for _, ve := range errs {
		t.Errorf("%s: %s: %s", what, ve.Message, ve.Reason)
		for _, se := range ve.SchemaValidationErrors {
			t.Errorf("  at %s (%s): %s", se.FieldPath, se.KeywordLocation, se.Reason)
		}
	}
}

// checkSchema validates one JSON value against a schema of the document's
// components.
func (c contract) checkSchema(t *testing.T, name, what string, payload []byte) {
	t.Helper()
	proxy, ok := c.model.Components.Schemas.Get(name)
	if !ok {
		t.Fatalf("no schema %s", name)
	}
	if ok, errs := schema_validation.NewSchemaValidator().ValidateSchemaBytes(proxy.Schema(), payload); !ok {
		reportErrors(t, what, errs)
	}
}

// TestOpenAPIDocumentValid validates the served document with a real
// OpenAPI 3.1 validator.
func TestOpenAPIDocumentValid(t *testing.T) {
	mustContract(t, MustEnv(t, nil))
}

// exchange is one request and its answer, the body kept.
type exchange struct {
	req  *http.Request
	res  *http.Response
	body []byte
}

// send does a request and keeps the body for validation and for the test.
func (e *testEnv) send(t *testing.T, status int, method, path, body string, header ...string) exchange {
	t.Helper()
	req, res := e.roundTrip(t, method, path, body, header...)
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != status {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, res.StatusCode, status, b)
	}
	return exchange{req: req, res: res, body: b}
}

// check validates the response's status, headers and body against the
// operation of the document that the request names.
func (c contract) check(t *testing.T, x exchange) {
	t.Helper()
	x.res.Body = io.NopCloser(bytes.NewReader(x.body))
	if ok, errs := c.v.ValidateHttpResponse(x.req, x.res); !ok {
		reportErrors(t, x.req.Method+" "+x.req.URL.RequestURI()+" → "+x.res.Status, errs)
	}
	c.checkEveryAnswerHeaders(t, x)
}

// everyAnswerHeaders are the headers the middleware (outer, dispatch)
// sets on every answer (the Ledger ones on all but the open mode's 403 to
// a foreign Host).
var everyAnswerHeaders = []string{"X-Request-ID", "X-Content-Type-Options", "Ledger-Position", "Ledger-Log"}

// checkEveryAnswerHeaders: x's answer carries everyAnswerHeaders, and
// its response in the document declares them and every other header the
// answer carries (Cache-Control, Vary, X-Accel-Buffering, ...; not its
// transportHeaders), so a generated client knows them (the validator
// checks the headers a response declares, not those it leaves out).
func (c contract) checkEveryAnswerHeaders(t *testing.T, x exchange) {
	t.Helper()
	for _, name := range everyAnswerHeaders {
		if x.res.Header.Get(name) == "" {
			t.Errorf("%s %s → %s: no %s", x.req.Method, x.req.URL.Path, x.res.Status, name)
		}
	}
	c.checkDeclared(t, x, answerHeaders(x)...) // everyAnswerHeaders among them
}

// corsAnswerHeaders are the headers every answer carries with CORS on,
// to a listed origin (the Access-Control ones, the last with
// --cors-credentials) or any (Vary: Origin).
var corsAnswerHeaders = []string{"Access-Control-Allow-Origin", "Access-Control-Expose-Headers",
	"Access-Control-Allow-Credentials", "Vary"}

// transportHeaders are the headers of an answer that the document does
// not declare: those of the connection and the message's framing, and
// Content-Type, which a response's content names. A HEAD answer's
// Content-Length is GET's body's, which the document declares.
var transportHeaders = []string{"Date", "Connection", "Transfer-Encoding", "Content-Type", "Content-Length"}

// answerHeaders are the headers x's answer carries but transportHeaders
// (a HEAD's Content-Length kept).
func answerHeaders(x exchange) []string {
	var names []string
	for name := range x.res.Header {
		if !slices.Contains(transportHeaders, name) || name == "Content-Length" && x.req.Method == "HEAD" {
			names = append(names, name)
		}
	}
	return names
}

// checkDeclared: each header of names that x's answer carries is
// declared by the response of the document that x's request and status
// name.
func (c contract) checkDeclared(t *testing.T, x exchange, names ...string) {
	t.Helper()
	what := x.req.Method + " " + x.req.URL.Path + " → " + x.res.Status
	item, errs, _ := paths.FindPath(x.req, c.model, nil)
	if len(errs) > 0 || item == nil {
		t.Errorf("%s: no path of the document", what)
		return
	}
	op := item.GetOperations().GetOrZero(strings.ToLower(x.req.Method))
	if op == nil || op.Responses == nil {
		t.Errorf("%s: no operation of the document", what)
		return
	}
	res := op.Responses.Codes.GetOrZero(strconv.Itoa(x.res.StatusCode))
	if res == nil {
		t.Errorf("%s: no response of the document", what)
		return
	}
	for _, name := range names {
		if x.res.Header.Get(name) != "" && !declaresHeader(res, name) {
			t.Errorf("%s: the answer carries %s, which its response in the document does not declare", what, name)
		}
	}
}

// declaresHeader reports whether r declares the header name (any case).
func declaresHeader(r *v3.Response, name string) bool {
	for k := range r.Headers.KeysFromOldest() {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// TestResponsesMatchOpenAPI sends a write, every read, the history in each
// format and typical errors, and validates each real response (status,
// headers, body) against the served document.
func TestResponsesMatchOpenAPI(t *testing.T) {
	e := MustEnv(t, nil)
	c := mustContract(t, e)
	ok := func(status int, method, path, body string, header ...string) exchange {
		t.Helper()
		x := e.send(t, status, method, path, body, header...)
		c.check(t, x)
		return x
	}
	json := []string{"Content-Type", "application/json"}
	ok(200, "PUT", "/v1/targets/article/a-1/like/u1", `{"metadata":{"source":"web"}}`, json...)
	ok(200, "PUT", "/v1/targets/article/a-2/collect/u1", "", "Idempotency-Key", "k-1")
	ok(200, "DELETE", "/v1/targets/article/a-2/collect/u1", "", "If-Match", `"v1"`)
	one := ok(200, "GET", "/v1/targets/article/a-1?viewer=u1&min_position=1", "")
	ok(304, "GET", "/v1/targets/article/a-1?viewer=u1", "", "If-None-Match", one.res.Header.Get("ETag"))
	ok(200, "GET", "/v1/targets?t=article/a-1&t=article/a-2&viewer=u2", "")
	ok(200, "GET", "/v1/targets/article/a-1/like?limit=1", "")
	ok(200, "GET", "/v1/users/u1/like?type=article", "")
	if page := ok(200, "GET", "/v1/events?limit=1", ""); page.res.Header.Get("Link") == "" {
		t.Error("a first page of 1 of 3 events has no Link")
	}
	ok(200, "GET", "/v1/events", "", "Accept", "text/csv")
	ok(200, "GET", "/healthz", "")
	ok(200, "GET", "/readyz", "")
	ok(200, "GET", "/metrics", "")
	// Go's client asks for gzip itself and then hides Content-Encoding;
	// asked for explicitly, the answer shows it.
	if x := ok(200, "GET", "/metrics", "", "Accept-Encoding", "gzip"); x.res.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("/metrics with Accept-Encoding gzip: Content-Encoding %q", x.res.Header.Get("Content-Encoding"))
	}
	ok(400, "GET", "/v1/targets/Article/a-1", "")
	ok(400, "PUT", "/v1/targets/article/a-1/like/u1", `{"metadata":{"k":1}}`, json...)
	ok(400, "PUT", "/v1/targets/article/a-1/like/u1", `{"metadata":{"request_id":"mine"}}`, json...)
	ok(404, "GET", "/v1/users/u1/follow", "")
	ok(406, "GET", "/v1/events", "", "Accept", "application/xml")
	ok(412, "DELETE", "/v1/targets/article/a-1/like/u1", "", "If-Match", `"v9"`)
	ok(413, "PUT", "/v1/targets/article/a-1/like/u1", `{"metadata":{"a":"`+strings.Repeat("x", MaxBodyBytes)+`"}}`, json...)
	ok(415, "PUT", "/v1/targets/article/a-1/like/u1", "x", "Content-Type", "text/plain")
	ok(422, "DELETE", "/v1/targets/article/a-2/collect/u1", "", "Idempotency-Key", "k-1")
	c.check(t, e.quick(50*time.Millisecond).send(t, 412, "GET", "/v1/targets/article/a-1?min_position=99", ""))
	c.check(t, e.quickOver(50*time.Millisecond, stuckRead{e.set}).send(t, 503, "GET", "/v1/targets/article/a-1?min_position=1", ""))
	ok(412, "GET", "/v1/events?after=9", "")
	down := e.serving(e.sideServer(e.srv.cfg, nil, headlessLog{e.store}, nil))
	c.check(t, down.send(t, 503, "GET", "/v1/events", ""))
	c.check(t, down.send(t, 503, "HEAD", "/v1/events", ""))
	c.check(t, down.send(t, 503, "GET", "/v1/events/stream", "", "Accept", "text/event-stream"))

	// NDJSON is one Event per line; the response validator reads a body as
	// one JSON value, so each line is checked against the Event schema.
	nd := e.send(t, 200, "GET", "/v1/events", "", "Accept", "application/x-ndjson")
	lines := strings.Split(strings.TrimSpace(string(nd.body)), "\n")
	if len(lines) != 3 {
		t.Fatalf("ndjson: %d lines", len(lines))
	}
	for _, line := range lines {
		c.checkSchema(t, "Event", "ndjson line", []byte(line))
	}
	// Unknown paths and methods are in no operation; their problems still
	// follow the Problem schema.
	for _, x := range []exchange{
		e.send(t, 404, "GET", "/v1/nothing", ""),
		e.send(t, 405, "POST", "/v1/targets/article/a-1", ""),
	} {
		c.checkSchema(t, "Problem", x.req.Method+" "+x.req.URL.Path, x.body)
	}
}

// TestCORSAnswersMatchOpenAPI: with CORS on (credentials too), answers
// to a listed origin carry Access-Control-Allow-Origin,
// -Expose-Headers, -Allow-Credentials and Vary: Origin; each answer of a
// representative set (a read, a write, problems, a HEAD, the history,
// the event stream, the metrics) matches the document, which declares
// them (optional: a server with CORS off sends none). A preflight is in
// no operation of the document, on purpose: a browser sends it on its
// own, with headers no script may set, and an OPTIONS a client sends is
// 405 (docs/api.md, CORS, describes the preflight's answer).
func TestCORSAnswersMatchOpenAPI(t *testing.T) {
	e := MustEnv(t, func(c *Config) { c.CORS = CORSConfig{Origins: []string{appOrigin}, Credentials: true} })
	c := mustContract(t, e)
	ok := func(status int, method, path, body string, header ...string) {
		t.Helper()
		x := e.send(t, status, method, path, body, append([]string{"Origin", appOrigin}, header...)...)
		c.checkCORS(t, x)
	}
	json := []string{"Content-Type", "application/json"}
	ok(200, "PUT", "/v1/targets/article/a-1/like/u1", `{"metadata":{"source":"web"}}`, json...)
	ok(200, "GET", "/v1/targets/article/a-1?viewer=u1", "")
	ok(200, "HEAD", "/v1/targets/article/a-1", "")
	ok(200, "GET", "/v1/targets/article/a-1/like", "")
	ok(200, "GET", "/v1/events?limit=1", "")
	ok(200, "HEAD", "/v1/events", "")
	ok(200, "HEAD", "/v1/events/stream", "")
	ok(200, "GET", "/metrics", "", "Accept-Encoding", "gzip")
	ok(200, "GET", "/healthz", "")
	ok(400, "GET", "/v1/targets/Article/a-1", "")
	ok(400, "HEAD", "/v1/targets/Article/a-1", "")
	ok(412, "GET", "/v1/events?after=9", "")
	c.checkCORS(t, e.open(t, "/v1/events/stream?after=0", "Origin", appOrigin))
}

// open sends a GET that must answer 200 and keeps its answer's headers,
// not its body (an event stream goes on until the client leaves).
func (e *testEnv) open(t *testing.T, path string, header ...string) exchange {
	t.Helper()
	req, res := e.roundTrip(t, "GET", path, "", header...)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d, want 200", path, res.StatusCode)
	}
	return exchange{req: req, res: res}
}

// checkCORS: x's answer carries the CORS headers of a listed origin with
// credentials, and matches the document.
func (c contract) checkCORS(t *testing.T, x exchange) {
	t.Helper()
	h := x.res.Header
	if h.Get("Access-Control-Allow-Origin") != appOrigin || h.Get("Access-Control-Allow-Credentials") != "true" ||
		h.Get("Access-Control-Expose-Headers") == "" || !varies(h, "Origin") {
		t.Errorf("%s %s → %s: not the CORS headers of a listed origin: %v", x.req.Method, x.req.URL.Path, x.res.Status, h)
	}
	c.check(t, x)
}

// headlessLog is a log whose head cannot be read (its database went away).
type headlessLog struct{ Log }

func (headlessLog) LastPosition(context.Context) (int64, error) {
	return 0, fmt.Errorf("read the head: the connection was lost: %w", domain.ErrUnavailable)
}

// TestHeadAnswersMatchOpenAPI: every GET route answers HEAD (the mux
// serves it), which the document names as an operation of its own: each
// answer, a 200 and the usual refusals, matches it (status, the headers
// it requires: ETag, Cache-Control, Content-Length on the JSON answers),
// a 200 carries GET's headers and status, without the body, and a
// Content-Length unless its GET's body is made as it is sent.
func TestHeadAnswersMatchOpenAPI(t *testing.T) {
	e := MustEnv(t, nil)
	c := mustContract(t, e)
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	for _, rt := range e.srv.routes {
		if rt.method != "GET" {
			continue
		}
		path := strings.NewReplacer("{type}", "article", "{id}", "a-1", "{kind}", "like", "{user}", "u1").Replace(rt.pattern)
		if path == "/v1/targets" {
			path += "?t=article/a-1"
		}
		head := e.send(t, 200, "HEAD", path, "")
		c.check(t, head)
		if head.res.Header.Get("Content-Length") == "" && !slices.Contains(bodyMadeAsSent, rt.pattern) {
			t.Errorf("HEAD %s: no Content-Length, though GET's body is known before it is sent", path)
		}
		if len(head.body) != 0 {
			t.Errorf("HEAD %s: a body of %d bytes", path, len(head.body))
		}
		if rt.pattern != "/v1/events/stream" { // its GET streams until the client leaves
			sameHeaders(t, path, e.send(t, 200, "GET", path, ""), head)
		}
	}
	etag := e.send(t, 200, "HEAD", "/v1/targets/article/a-1", "").res.Header.Get("ETag")
	c.check(t, e.send(t, 304, "HEAD", "/v1/targets/article/a-1", "", "If-None-Match", etag))
	c.check(t, e.send(t, 400, "HEAD", "/v1/targets/Article/a-1", ""))
	c.check(t, e.send(t, 400, "HEAD", "/healthz", "x"))
	c.check(t, e.send(t, 404, "HEAD", "/v1/users/u1/follow", ""))
	c.check(t, e.send(t, 406, "HEAD", "/v1/events", "", "Accept", "application/xml"))
	c.check(t, e.send(t, 412, "HEAD", "/v1/events?after=9", ""))
	if x := e.send(t, 200, "HEAD", "/metrics", "", "Accept-Encoding", "gzip"); x.res.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("HEAD /metrics with Accept-Encoding gzip: Content-Encoding %q", x.res.Header.Get("Content-Encoding"))
	} else {
		c.check(t, x)
	}
	// A problem of over 2 KB, which net/http sends in chunks unless told
	// its length.
	bad := "/v1/targets?t=Bad/x"
	for i := range 60 {
		bad += "&t=Bad" + strconv.Itoa(i) + "/x"
	}
	c.check(t, e.send(t, 400, "HEAD", bad, ""))
}

// bodyMadeAsSent are the GET routes whose body's length is known only by
// making it, which their HEAD does not (the history's page, the event
// stream, the metrics): their HEAD sends no Content-Length (RFC 9110
// 9.3.2 lets it leave out a header only the content determines).
var bodyMadeAsSent = []string{"/v1/events", "/v1/events/stream", "/metrics"}

// sameHeaders: HEAD answers get's headers, but for those of its own
// request (Date, X-Request-ID) and those only the body tells (the
// history's Link; a Content-Length, which is GET's body's when HEAD sends
// one).
func sameHeaders(t *testing.T, path string, get, head exchange) {
	t.Helper()
	for name := range get.res.Header {
		switch name {
		case "Date", "X-Request-Id", "Link", "Content-Length":
			continue
		}
		if g, h := get.res.Header.Values(name), head.res.Header.Values(name); !slices.Equal(g, h) {
			t.Errorf("%s: GET's %s %q, HEAD's %q", path, name, g, h)
		}
	}
	if n := head.res.Header.Get("Content-Length"); n != "" && n != strconv.Itoa(len(get.body)) {
		t.Errorf("%s: HEAD's Content-Length %s, GET's body %d bytes", path, n, len(get.body))
	}
}

// TestOpsAnswersMatchOpenAPI validates the problems the operations
// endpoints answer (a GET with a body, a server shutting down) against
// their operations in the document: every endpoint answers them, so a
// client generated from the document must know them.
func TestOpsAnswersMatchOpenAPI(t *testing.T) {
	e := MustEnv(t, nil)
	c := mustContract(t, e)
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json"} {
		c.check(t, e.send(t, 400, "GET", path, "x"))
	}
	e.srv.closing.Store(true)
	defer e.srv.closing.Store(false)
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json"} {
		c.check(t, e.send(t, 503, "GET", path, ""))
	}
}

// TestOpenAPIIntegersName64Bits checks that every integer of the document
// that may exceed 32 bits (positions, stream versions, counts: up to
// 2^63-1) says format int64: generators (openapi-generator's Java, Kotlin,
// C#) make an integer without a format a 32-bit int, and their clients
// fail on the first position past 2,147,483,647.
func TestOpenAPIIntegersName64Bits(t *testing.T) {
	var doc any
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if v["type"] == "integer" {
				hi, bounded := v["maximum"].(float64)
				if (!bounded || hi > math.MaxInt32) && v["format"] != "int64" {
					t.Errorf("%s: an integer up to %v without format int64", path, v["maximum"])
				}
			}
			for k, e := range v {
				walk(path+"/"+k, e)
			}
		case []any:
			for i, e := range v {
				walk(fmt.Sprintf("%s/%d", path, i), e)
			}
		}
	}
	walk("", doc)
}

// TestOpenAPIDeclaresPromisedHeaders: the headers docs/api.md promises on
// every answer of a kind are required in the document: Retry-After on 429
// and every 503, WWW-Authenticate on 401, Allow on 405, and
// Cache-Control: no-cache on every read's 200.
func TestOpenAPIDeclaresPromisedHeaders(t *testing.T) {
	var doc struct {
		Paths      map[string]map[string]struct{ Responses map[string]json.RawMessage }
		Components struct{ Responses map[string]json.RawMessage }
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	required := func(what string, raw json.RawMessage, header string) {
		var r struct {
			Headers map[string]struct{ Required bool }
		}
		if err := json.Unmarshal(raw, &r); err != nil || !r.Headers[header].Required {
			t.Errorf("%s: %s is not a required header (%v)", what, header, err)
		}
	}
	for name, header := range map[string]string{"TooManyRequests": "Retry-After", "Unavailable": "Retry-After",
		"Unauthorized": "WWW-Authenticate", "MethodNotAllowed": "Allow"} {
		required(name, doc.Components.Responses[name], header)
	}
	for path, ops := range doc.Paths {
		for _, method := range []string{"get", "head"} {
			if op, ok := ops[method]; ok && strings.HasPrefix(path, "/v1/") {
				required(strings.ToUpper(method)+" "+path+" 200", op.Responses["200"], "Cache-Control")
			}
		}
	}
}

// TestOpenAPIDeclaresEveryAnswerHeaders: every response of the document,
// inline or shared, declares the headers every answer carries (required,
// but Ledger-Position and Ledger-Log on a 403, which a server without
// tokens sends without them to a Host not addressed to this machine), and
// those every answer carries with CORS on (corsAnswerHeaders; optional,
// as a server with CORS off sends none, but Vary where the answer varies
// on more than Origin).
// TestResponsesMatchOpenAPI checks real answers against the responses it
// meets; this covers the responses no test answer reaches.
func TestOpenAPIDeclaresEveryAnswerHeaders(t *testing.T) {
	type response struct {
		Ref     string `json:"$ref"`
		Headers map[string]struct {
			Ref      string `json:"$ref"`
			Required bool
		}
	}
	var doc struct {
		Paths      map[string]map[string]struct{ Responses map[string]response }
		Components struct {
			Responses map[string]response
			Headers   map[string]struct{ Required bool }
		}
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	check := func(what string, r response, forbidden bool) {
		for _, name := range everyAnswerHeaders {
			h, ok := r.Headers[name]
			required := h.Required
			if ref, found := strings.CutPrefix(h.Ref, "#/components/headers/"); found {
				required = doc.Components.Headers[ref].Required
			}
			optional := forbidden && strings.HasPrefix(name, "Ledger-")
			if !ok || required == optional {
				t.Errorf("%s: %s declared %v, required %v", what, name, ok, required)
			}
		}
		for _, name := range corsAnswerHeaders {
			h, ok := r.Headers[name]
			ref, _ := strings.CutPrefix(h.Ref, "#/components/headers/")
			if !ok || name != "Vary" && (h.Required || doc.Components.Headers[ref].Required) {
				t.Errorf("%s: %s declared %v, required %v (CORS may be off)", what, name, ok, h.Required || doc.Components.Headers[ref].Required)
			}
		}
	}
	for name, r := range doc.Components.Responses {
		check(name, r, strings.HasSuffix(name, "Forbidden"))
	}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			for code, r := range op.Responses {
				if r.Ref == "" {
					check(method+" "+path+" "+code, r, code == "403")
				}
			}
		}
	}
}

// TestStreamDataMatchesOpenAPI: the data of an event stream frame, an
// event with its target's counts, follows the document's StreamEvent
// schema, so a client can type what it parses from the stream.
func TestStreamDataMatchesOpenAPI(t *testing.T) {
	e := MustEnv(t, nil)
	c := mustContract(t, e)
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	r := e.openStream(t, "?after=0")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			c.checkSchema(t, "StreamEvent", "stream data", []byte(data))
			return
		}
	}
}

// TestRoutesTakeTheDocumentedQuery: the query parameters each /v1 route
// takes (the others are 400) are the ones the document lists for it, so
// that neither refuses what the other offers.
func TestRoutesTakeTheDocumentedQuery(t *testing.T) {
	type param struct {
		Name, In string
		Ref      string `json:"$ref"`
	}
	var doc struct {
		Paths      map[string]map[string]json.RawMessage
		Components struct{ Parameters map[string]param }
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	query := func(raw json.RawMessage) []string {
		var op struct{ Parameters []param }
		_ = json.Unmarshal(raw, &op) // a path's "parameters" entry is not an operation
		var names []string
		for _, p := range op.Parameters {
			if p.Ref != "" {
				p = doc.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
			}
			if p.In == "query" {
				names = append(names, p.Name)
			}
		}
		return names
	}
	e := MustEnv(t, nil)
	for _, rt := range e.srv.routes {
		if !strings.HasPrefix(rt.pattern, "/v1/") {
			continue
		}
		item := doc.Paths[rt.pattern]
		documented := append(query(item["parameters"]), query(item[strings.ToLower(rt.method)])...)
		taken := append(slices.Clone(e.srv.queries[rt.method+" "+rt.pattern]), "log")
		if rt.pattern == "/v1/events/stream" { // refuses the history's filters itself, with its own reason
			taken = slices.DeleteFunc(taken, func(n string) bool { return slices.Contains(historyFilters, n) })
		}
		slices.Sort(documented)
		slices.Sort(taken)
		if !slices.Equal(documented, taken) {
			t.Errorf("%s %s: takes %v, the document lists %v", rt.method, rt.pattern, taken, documented)
		}
	}
}

// paramSamples are values of query parameters, each of which the server
// either refuses (400) or accepts, by the form its validation enforces.
var paramSamples = map[string][]string{
	"kind":        {"like", "collect", "follow", "a_1", strings.Repeat("a", 32), strings.Repeat("a", 33), "Like", "1like", "like-it", ""},
	"user":        {"u1", "a.b_c:d@e-f", strings.Repeat("U", 128), strings.Repeat("U", 129), "u 1", "u/1", "ü", ""},
	"target_type": {"article", "a-b_c9", strings.Repeat("a", 32), strings.Repeat("a", 33), "Article", "9a", "a.b", ""},
	"target_id":   {"a-1", "A.b:c@d_e", strings.Repeat("i", 128), strings.Repeat("i", 129), "a 1", "a/1", "é", ""},
	// Not 2^63-1 itself: libopenapi holds a schema's maximum as a float64,
	// 2^63, and its validator refuses the integers just below it.
	"after": {"0", "1", "9223372036854774000", "9223372036854775808", "-1", "+1", "1.5", "x", ""},
	"limit": {"1", "2147483647", "2147483648", "0", "-1", "x"},
}

// TestOpenAPIParametersAgreeWithServer: for sample values of the history's
// filters, the document's schema of each parameter accepts exactly what
// the server accepts, so a client validating against the document sends
// nothing the server refuses and refuses nothing it would serve. The
// history is asked for NDJSON, whose limit is the document's (a JSON page
// caps it at 10000, which its description says). The same for a page of
// targets' t, a list's cursor and a collection's type.
func TestOpenAPIParametersAgreeWithServer(t *testing.T) {
	e := MustEnv(t, nil)
	c := mustContract(t, e)
	ndjson := []string{"Accept", "application/x-ndjson"}
	for name, values := range paramSamples {
		query := ""
		if name == "target_id" {
			query = "target_type=article&"
		}
		for _, v := range values {
			c.agree(t, e, "/v1/events", name, query, v, ndjson...)
		}
	}
	for _, v := range []string{"article/a-1", "a-b/A.b:c@d_e", "Article/a-1", "article", "article/a/b", "/a-1", "article/"} {
		c.agree(t, e, "/v1/targets", "t", "", v)
	}
	for _, v := range []string{"", strings.Repeat("x", 1025)} {
		c.agree(t, e, "/v1/users/{user}/{kind}", "cursor", "", v)
	}
	for _, v := range []string{"article", "Article", ""} {
		c.agree(t, e, "/v1/users/{user}/{kind}", "type", "", v)
	}
}

// agree checks that GET path?query&name=v is 400 if and only if the
// document's schema of the parameter refuses v.
func (c contract) agree(t *testing.T, e *testEnv, path, name, query, v string, header ...string) {
	t.Helper()
	schema := c.paramSchema(t, path, name)
	if schema == nil {
		return
	}
	docOK, _ := schema_validation.NewSchemaValidator().ValidateSchemaBytes(schema, paramJSON(schema, v))
	target := strings.NewReplacer("{user}", "u1", "{kind}", "like").Replace(path)
	res, body := e.do("GET", target+"?"+query+name+"="+url.QueryEscape(v), "", header...)
	if serverOK := res.StatusCode != 400; serverOK != docOK {
		t.Errorf("%s %s=%q: the document accepts it: %v; the server answers %d %s", path, name, clip(v), docOK, res.StatusCode, body)
	}
}

// paramSchema is the schema of the query parameter name of GET path.
func (c contract) paramSchema(t *testing.T, path, name string) *base.Schema {
	t.Helper()
	item := c.model.Paths.PathItems.GetOrZero(path)
	if item == nil || item.Get == nil {
		t.Fatalf("no GET %s in the document", path)
	}
	for _, p := range item.Get.Parameters {
		if p.Name == name && p.In == "query" {
			return p.Schema.Schema()
		}
	}
	t.Errorf("GET %s has no query parameter %s in the document", path, name)
	return nil
}

// paramJSON is the query value v as the JSON value schema describes: a
// number for an integer when v is written as one, an array of one item
// for an array, else a string.
func paramJSON(schema *base.Schema, v string) []byte {
	var b []byte
	switch {
	case slices.Contains(schema.Type, "integer") && digits(strings.TrimPrefix(v, "-")):
		b = []byte(v)
	case slices.Contains(schema.Type, "array"):
		b, _ = json.Marshal([]string{v})
	default:
		b, _ = json.Marshal(v)
	}
	return b
}
