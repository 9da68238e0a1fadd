package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hostile is one malformed request and the answer docs/api.md's status table
// requires: status, and for a 400 the parameter invalid_params must name.
type hostile struct {
	name   string
	method string
	target string
	header []string // name, value pairs
	body   string
	length int // Content-Length when it differs from len(body): a truncated body
	status int
	param  string
}

func hostileCases(cursor, otherCursor string) []hostile {
	const w = "/v1/targets/article/h-1/like/u1"
	long := strings.Repeat("a", 129)
	deep := strings.Repeat("[", 2000) + strings.Repeat("]", 2000)
	many := `{"metadata":{` + strings.TrimSuffix(strings.Repeat(`"k":"v",`, 1), ",")
	for i := range 17 {
		many += fmt.Sprintf(`,"k%d":"v"`, i)
	}
	many += "}}"
	return []hostile{
		// methods
		{name: "POST on a write", method: "POST", target: w, status: 405},
		{name: "PATCH on a write", method: "PATCH", target: w, status: 405},
		{name: "TRACE on a read", method: "TRACE", target: "/v1/targets/article/h-1", status: 405},
		{name: "unknown method", method: "BREW", target: "/v1/targets/article/h-1", status: 405},
		{name: "DELETE on history", method: "DELETE", target: "/v1/events", status: 405},
		{name: "PUT on healthz", method: "PUT", target: "/healthz", status: 405},
		// paths
		{name: "unknown route", method: "GET", target: "/v2/targets/article/h-1", status: 404},
		{name: "upper-case version", method: "GET", target: "/V1/targets/article/h-1", status: 404},
		{name: "missing id", method: "GET", target: "/v1/targets/article", status: 404},
		{name: "trailing slash", method: "GET", target: "/v1/targets/article/h-1/", status: 404},
		{name: "too many segments", method: "PUT", target: w + "/extra", status: 404},
		{name: "double slash", method: "GET", target: "/v1/targets//h-1", status: 400, param: "path"},
		{name: "dot segment", method: "GET", target: "/v1/./targets/article/h-1", status: 400, param: "path"},
		{name: "dot-dot segment", method: "PUT", target: "/v1/targets/article/h-1/like/../u1", status: 400, param: "path"},
		{name: "percent-encoded slash in id", method: "PUT", target: "/v1/targets/article/h%2F1/like/u1", status: 400, param: "id"},
		{name: "percent-encoded slash in user", method: "PUT", target: "/v1/targets/article/h-1/like/u%2F1", status: 400, param: "user"},
		// ids and forms
		{name: "id too long", method: "PUT", target: "/v1/targets/article/" + long + "/like/u1", status: 400, param: "id"},
		{name: "user too long", method: "PUT", target: "/v1/targets/article/h-1/like/" + long, status: 400, param: "user"},
		{name: "upper-case type", method: "GET", target: "/v1/targets/Article/h-1", status: 400, param: "type"},
		{name: "type with a dot", method: "GET", target: "/v1/targets/art.icle/h-1", status: 400, param: "type"},
		{name: "malformed kind", method: "PUT", target: "/v1/targets/article/h-1/Like/u1", status: 400, param: "kind"},
		{name: "unconfigured kind", method: "PUT", target: "/v1/targets/article/h-1/follow/u1", status: 404},
		{name: "space in user", method: "PUT", target: "/v1/targets/article/h-1/like/u%201", status: 400, param: "user"},
		// unicode tricks
		{name: "cyrillic homoglyph in type", method: "GET", target: "/v1/targets/%D0%B0rticle/h-1", status: 400, param: "type"},
		{name: "homoglyph in user", method: "PUT", target: "/v1/targets/article/h-1/like/u%D0%BE1", status: 400, param: "user"},
		{name: "RTL override in id", method: "PUT", target: "/v1/targets/article/h%E2%80%AE1/like/u1", status: 400, param: "id"},
		{name: "RTL mark in viewer", method: "GET", target: "/v1/targets/article/h-1?viewer=u1%E2%80%8F", status: 400, param: "viewer"},
		{name: "NUL in id", method: "PUT", target: "/v1/targets/article/h%001/like/u1", status: 400, param: "id"},
		{name: "NUL in user", method: "PUT", target: "/v1/targets/article/h-1/like/u1%00", status: 400, param: "user"},
		{name: "overlong UTF-8 slash in id", method: "PUT", target: "/v1/targets/article/h%C0%AF1/like/u1", status: 400, param: "id"},
		{name: "invalid UTF-8 in user", method: "PUT", target: "/v1/targets/article/h-1/like/u%FF", status: 400, param: "user"},
		{name: "zero-width space in id", method: "GET", target: "/v1/targets/article/h%E2%80%8B1", status: 400, param: "id"},
		// query parameters
		{name: "bad percent escape", method: "GET", target: "/v1/targets/article/h-1?viewer=%zz", status: 400, param: "query"},
		{name: "limit 0", method: "GET", target: "/v1/targets/article/h-1/like?limit=0", status: 400, param: "limit"},
		{name: "negative limit", method: "GET", target: "/v1/targets/article/h-1/like?limit=-1", status: 400, param: "limit"},
		{name: "limit over 1000", method: "GET", target: "/v1/users/u1/like?limit=1001", status: 400, param: "limit"},
		{name: "huge limit", method: "GET", target: "/v1/events?limit=99999999999999999999999", status: 400, param: "limit"},
		{name: "exponent limit", method: "GET", target: "/v1/users/u1/like?limit=1e3", status: 400, param: "limit"},
		{name: "limit twice", method: "GET", target: "/v1/users/u1/like?limit=1&limit=2", status: 400, param: "limit"},
		{name: "negative min_position", method: "GET", target: "/v1/targets/article/h-1?min_position=-1", status: 400, param: "min_position"},
		{name: "min_position over int64", method: "GET", target: "/v1/targets/article/h-1?min_position=9223372036854775808", status: 400, param: "min_position"},
		{name: "min_position beyond the log", method: "GET", target: "/v1/targets/article/h-1?min_position=9223372036854775807", status: 412},
		{name: "negative after", method: "GET", target: "/v1/events?after=-5", status: 400, param: "after"},
		{name: "huge after", method: "GET", target: "/v1/events/stream?after=18446744073709551616", status: 400, param: "after"},
		{name: "bad since", method: "GET", target: "/v1/events?since=yesterday", status: 400, param: "since"},
		{name: "no t", method: "GET", target: "/v1/targets", status: 400, param: "t"},
		{name: "201 targets", method: "GET", target: "/v1/targets?" + strings.Repeat("t=article/x&", 201), status: 400, param: "t"},
		{name: "t without id", method: "GET", target: "/v1/targets?t=article", status: 400, param: "t"},
		{name: "bad type filter", method: "GET", target: "/v1/users/u1/like?type=Art%20icle", status: 400, param: "type"},
		// cursors
		{name: "tampered cursor", method: "GET", target: "/v1/targets/article/h-1/like?limit=1&cursor=" + tamper(cursor), status: 400, param: "cursor"},
		{name: "cursor of another list", method: "GET", target: "/v1/targets/article/h-2/like?limit=1&cursor=" + otherCursor, status: 400, param: "cursor"},
		{name: "cursor with a line break", method: "GET", target: "/v1/targets/article/h-1/like?limit=1&cursor=" + cursor[:10] + "%0A" + cursor[10:], status: 400, param: "cursor"},
		{name: "forged cursor", method: "GET", target: "/v1/users/u1/like?cursor=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", status: 400, param: "cursor"},
		{name: "long cursor", method: "GET", target: "/v1/users/u1/like?cursor=" + strings.Repeat("A", 2000), status: 400, param: "cursor"},
		{name: "SQL in cursor", method: "GET", target: "/v1/users/u1/like?cursor=1%27%20OR%20%271%27%3D%271", status: 400, param: "cursor"},
		// SQL injection
		{name: "SQL in user", method: "PUT", target: "/v1/targets/article/h-1/like/u1%27%3BDROP%20TABLE%20events%3B--", status: 400, param: "user"},
		{name: "SQL in viewer", method: "GET", target: "/v1/targets/article/h-1?viewer=%27%20OR%201%3D1--", status: 400, param: "viewer"},
		{name: "SQL in kind filter", method: "GET", target: "/v1/events?kind=like%27--", status: 400, param: "kind"},
		// headers
		{name: "If-Match unquoted", method: "PUT", target: w, header: []string{"If-Match", "v1"}, status: 400, param: "If-Match"},
		{name: "If-Match weak", method: "PUT", target: w, header: []string{"If-Match", `W/"v1"`}, status: 400, param: "If-Match"},
		{name: "If-Match negative", method: "PUT", target: w, header: []string{"If-Match", `"v-1"`}, status: 400, param: "If-Match"},
		{name: "If-Match huge", method: "PUT", target: w, header: []string{"If-Match", `"v99999999999999999999"`}, status: 400, param: "If-Match"},
		{name: "If-Match stale", method: "PUT", target: w, header: []string{"If-Match", `"v7"`}, status: 412},
		{name: "Idempotency-Key with space", method: "PUT", target: w, header: []string{"Idempotency-Key", "a b"}, status: 400, param: "Idempotency-Key"},
		{name: "Idempotency-Key too long", method: "PUT", target: w, header: []string{"Idempotency-Key", long}, status: 400, param: "Idempotency-Key"},
		{name: "Idempotency-Key non-ASCII", method: "PUT", target: w, header: []string{"Idempotency-Key", "k\u00e9y"}, status: 400, param: "Idempotency-Key"},
		{name: "Idempotency-Key reused", method: "DELETE", target: "/v1/targets/article/h-1/like/u9", header: []string{"Idempotency-Key", "seen-key"}, status: 422},
		{name: "Ledger-Min-Position text", method: "GET", target: "/v1/targets/article/h-1", header: []string{"Ledger-Min-Position", "abc"}, status: 400, param: "Ledger-Min-Position"},
		{name: "Ledger-Min-Position negative", method: "GET", target: "/v1/targets/article/h-1", header: []string{"Ledger-Min-Position", "-1"}, status: 400, param: "Ledger-Min-Position"},
		{name: "Ledger-Min-Position twice", method: "GET", target: "/v1/targets/article/h-1", header: []string{"Ledger-Min-Position", "1", "Ledger-Min-Position", "2"}, status: 400, param: "Ledger-Min-Position"},
		{name: "Last-Event-ID text", method: "GET", target: "/v1/events/stream", header: []string{"Last-Event-ID", "x"}, status: 400, param: "Last-Event-ID"},
		{name: "huge If-Match header", method: "PUT", target: w, header: []string{"If-Match", `"v` + strings.Repeat("9", 40<<10) + `"`}, status: 400, param: "If-Match"},
		{name: "Accept html on history", method: "GET", target: "/v1/events", header: []string{"Accept", "text/html"}, status: 406},
		{name: "Accept json on stream", method: "GET", target: "/v1/events/stream", header: []string{"Accept", "application/json"}, status: 406},
		{name: "Accept q=0 everything", method: "GET", target: "/v1/events", header: []string{"Accept", "*/*;q=0"}, status: 406},
		{name: "Accept image on a read", method: "GET", target: "/v1/targets/article/h-1", header: []string{"Accept", "image/png"}, status: 406},
		// bodies
		{name: "body over 4 KiB", method: "PUT", target: w, header: []string{"Content-Type", "application/json"}, body: `{"metadata":{"a":"` + strings.Repeat("x", 5000) + `"}}`, status: 413},
		{name: "declared 1 MiB", method: "PUT", target: w, header: []string{"Content-Type", "application/json"}, body: "{}", length: 1 << 20, status: 413},
		{name: "truncated body", method: "PUT", target: w, header: []string{"Content-Type", "application/json"}, body: `{"metadata":{"a"`, length: 100, status: 400, param: "body"},
		{name: "text/plain body", method: "PUT", target: w, header: []string{"Content-Type", "text/plain"}, body: `{"metadata":{}}`, status: 415},
		{name: "body without Content-Type", method: "PUT", target: w, body: `{"metadata":{}}`, status: 415},
		{name: "form body", method: "PUT", target: w, header: []string{"Content-Type", "application/x-www-form-urlencoded"}, body: "metadata=x", status: 415},
		{name: "malformed Content-Type", method: "PUT", target: w, header: []string{"Content-Type", "application/json;;;="}, body: `{}`, status: 415},
		{name: "not JSON", method: "PUT", target: w, header: []string{"Content-Type", "application/json"}, body: "metadata", status: 400, param: "body"},
		{name: "unknown field", method: "PUT", target: w, header: []string{"Content-Type", "application/json"}, body: `{"metadata":{},"admin":true}`, status: 400, param: "body"},
		{name: "proto pollution field", method: "PUT", target: w, header: []string{"Content-Type", "application/json"}, body: `{"__proto__":{"admin":"1"}}`, status: 400, param: "body"},
		{name: "number value", method: "PUT", target: w, header: []string{"Content-Type", "application/json"}, body: `{"metadata":{"a":1}}`, status: 400, param: "body"},
		{name: "array body", method: "PUT", target: w, header: []string{"Content-Type", "application/json"}, body: `[{"metadata":{}}]`, status: 400, param: "body"},
		{name: "two JSON values", method: "PUT", target: w, header: []string{"Content-Type", "application/json"}, body: `{"metadata":{}}{"metadata":{}}`, status: 400, param: "body"},
		{name: "duplicate keys", method: "PUT", target: w, header: []string{"Content-Type", "application/json"}, body: `{"metadata":{"source":"web","source":"admin"}}`, status: 400, param: "body"},
		{name: "deeply nested JSON", method: "PUT", target: w, header: []string{"Content-Type", "application/json"}, body: `{"metadata":{"a":` + deep + `}}`, status: 400, param: "body"},
		{name: "17 metadata entries", method: "PUT", target: w, header: []string{"Content-Type", "application/json"}, body: many, status: 400, param: "metadata"},
		{name: "invalid UTF-8 in metadata", method: "PUT", target: w, header: []string{"Content-Type", "application/json"}, body: "{\"metadata\":{\"a\":\"\xc0\xaf\"}}", status: 400, param: "body"},
		{name: "lone surrogate", method: "PUT", target: w, header: []string{"Content-Type", "application/json"}, body: `{"metadata":{"a":"\ud800"}}`, status: 400, param: "body"},
	}
}

// tamper flips one character in the middle of a cursor.
func tamper(c string) string {
	b := []byte(c)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// TestHostileInput sends each malformed request over a raw connection to
// the real server: each gets the exact status of docs/api.md's table as an
// application/problem+json body (invalid_params naming the parameter for a
// 400), and afterwards the server is still healthy.
func TestHostileInput(t *testing.T) {
	s := startServe(t, filepath.Join(t.TempDir(), "hostile.db"), nil, "--consistency-timeout", "100ms")
	for _, u := range []string{"u1", "u2", "u3"} {
		s.want(t, 200, "PUT", "/v1/targets/article/h-1/like/"+u, "")
		s.want(t, 200, "PUT", "/v1/targets/article/h-2/like/"+u, "")
	}
	s.want(t, 200, "PUT", "/v1/targets/article/h-1/like/u9", "", "Idempotency-Key", "seen-key")
	cursor := decode[struct {
		NextCursor string `json:"next_cursor"`
	}](t, s.want(t, 200, "GET", "/v1/targets/article/h-1/like?limit=1", "")).NextCursor
	other := decode[struct {
		NextCursor string `json:"next_cursor"`
	}](t, s.want(t, 200, "GET", "/v1/users/u1/like?limit=1", "")).NextCursor
	cases := hostileCases(cursor, other)
	if len(cases) < 60 {
		t.Fatalf("only %d cases", len(cases))
	}
	addr := strings.TrimPrefix(s.base, "http://")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, body := MustRawRequest(t, addr, c)
			checkProblem(t, c, res, body)
		})
	}
	MustStayHealthy(t, s)
}

// MustRawRequest writes c byte for byte (no client-side cleaning of the
// path or headers) and reads the answer.
func MustRawRequest(tb testing.TB, addr string, c hostile) (*http.Response, []byte) {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	length := len(c.body)
	if c.length > 0 {
		length = c.length
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", c.method, c.target, addr)
	for i := 0; i+1 < len(c.header); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", c.header[i], c.header[i+1])
	}
	if length > 0 {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", length)
	}
	b.WriteString("\r\n" + c.body)
	if _, err := io.WriteString(conn, b.String()); err != nil {
		tb.Fatal(err)
	}
	if c.length > len(c.body) && c.length < 1<<20 {
		conn.(*net.TCPConn).CloseWrite() // the client gives up mid-body
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: c.method})
	if err != nil {
		tb.Fatalf("%s %s: %v", c.method, clipped(c.target), err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, body
}

func clipped(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

// checkProblem checks the status, the problem form, the parameter a 400
// names, Allow on a 405 and Retry-After on a 503.
func checkProblem(t *testing.T, c hostile, res *http.Response, body []byte) {
	t.Helper()
	if res.StatusCode != c.status {
		t.Fatalf("%s %s: %d, want %d: %s", c.method, clipped(c.target), res.StatusCode, c.status, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json: %s", ct, body)
	}
	var p struct {
		Type, Title, Detail string
		Status              int
		InvalidParams       []struct{ Name, Reason string } `json:"invalid_params"`
	}
	if err := json.Unmarshal(body, &p); err != nil || p.Status != c.status || p.Type == "" || p.Title == "" {
		t.Fatalf("not a problem with status %d: %s (%v)", c.status, body, err)
	}
	if c.status == 400 && !namesParam(p.InvalidParams, c.param) {
		t.Fatalf("invalid_params %+v does not name %q", p.InvalidParams, c.param)
	}
	if c.status == 405 && res.Header.Get("Allow") == "" {
		t.Fatal("405 without Allow")
	}
	if c.status == 503 && res.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
}

func namesParam(ps []struct{ Name, Reason string }, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

// MustStayHealthy checks that the server still answers: /healthz, a
// normal write and the read of it.
func MustStayHealthy(tb testing.TB, s *served) {
	tb.Helper()
	s.want(tb, 200, "GET", "/healthz", "")
	wb := decode[writeBody](tb, s.want(tb, 200, "PUT", "/v1/targets/article/after-1/collect/u1", `{"metadata":{"source":"test"}}`, "Content-Type", "application/json"))
	got := decode[targetBody](tb, s.want(tb, 200, "GET", fmt.Sprintf("/v1/targets/article/after-1?viewer=u1&min_position=%d", wb.Position), ""))
	if got.Counts["collect"] != 1 || !got.Viewer["collect"] {
		tb.Fatalf("after the hostile requests: %+v", got)
	}
}

// TestHostileTransport: requests that net/http refuses before any handler
// runs (headers over the 128 KiB limit, a raw control byte in the request
// line) get its plain 431 or 400, not a problem: the limit of what the API
// can shape. The server stays healthy.
func TestHostileTransport(t *testing.T) {
	s := startServe(t, filepath.Join(t.TempDir(), "transport.db"), nil)
	addr := strings.TrimPrefix(s.base, "http://")
	for _, c := range []hostile{
		{name: "header over 128 KiB", method: "GET", target: "/v1/targets/article/h-1", header: []string{"X-Big", strings.Repeat("b", 140<<10)}, status: 431},
		{name: "many headers over 128 KiB", method: "GET", target: "/healthz", header: manyHeaders(4000), status: 431},
		{name: "raw NUL in the path", method: "GET", target: "/v1/targets/article/h\x001", status: 400},
		{name: "space in the path", method: "GET", target: "/v1/targets/article/h 1", status: 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, body := MustRawRequest(t, addr, c)
			if res.StatusCode != c.status {
				t.Fatalf("%d, want %d: %s", res.StatusCode, c.status, body)
			}
		})
	}
	MustStayHealthy(t, s)
}

func manyHeaders(n int) []string {
	h := make([]string, 0, 2*n)
	for i := range n {
		h = append(h, fmt.Sprintf("X-H%d", i), strings.Repeat("v", 40))
	}
	return h
}
