package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
)

const appOrigin = "https://app.example"

// preflight sends a CORS preflight for method on path from origin.
func (e *testEnv) preflight(path, origin, method, headers string) *http.Response {
	e.t.Helper()
	res, _ := e.do("OPTIONS", path, "", "Origin", origin, "Access-Control-Request-Method", method,
		"Access-Control-Request-Headers", headers)
	return res
}

// corsPreflight sends a preflight for method from appOrigin with one
// Access-Control-Request-Headers line for each of asked.
func corsPreflight(e *testEnv, method string, asked ...string) *httptest.ResponseRecorder {
	r := newRequest("OPTIONS", "/v1/targets/article/a-1/like/u1", nil)
	r.Header.Set("Origin", appOrigin)
	r.Header.Set("Access-Control-Request-Method", method)
	for _, a := range asked {
		r.Header.Add("Access-Control-Request-Headers", a)
	}
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, r)
	return rec
}

func varies(h http.Header, name string) bool {
	for _, v := range h.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), name) {
				return true
			}
		}
	}
	return false
}

func TestCORS(t *testing.T) {
	// Browsers send the names in lower case, sorted (Fetch standard).
	const asked = "authorization,content-type,idempotency-key,if-match,if-none-match,last-event-id,ledger-min-position"
	e := MustEnv(t, func(c *Config) { c.CORS = CORSConfig{Origins: []string{appOrigin, "http://localhost:5173"}} })
	t.Run("Preflight", func(t *testing.T) {
		res := e.preflight("/v1/targets/article/a-1/like/u1", appOrigin, "PUT", asked)
		h := res.Header
		if res.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != appOrigin || !varies(h, "Origin") {
			t.Fatalf("preflight: %d %v", res.StatusCode, h)
		}
		if h.Get("Access-Control-Allow-Methods") != "PUT" || h.Get("Access-Control-Allow-Headers") != asked {
			t.Fatalf("preflight allows %q / %q", h.Get("Access-Control-Allow-Methods"), h.Get("Access-Control-Allow-Headers"))
		}
		if h.Get("Access-Control-Allow-Credentials") != "" {
			t.Fatal("credentials allowed without being asked for")
		}
	})
	t.Run("PreflightRefused", func(t *testing.T) {
		for name, res := range map[string]*http.Response{
			"origin": e.preflight("/v1/targets/article/a-1", "https://evil.example", "GET", ""),
			"method": e.preflight("/v1/targets/article/a-1", appOrigin, "PATCH", ""),
			"header": e.preflight("/v1/targets/article/a-1", appOrigin, "GET", "x-secret"),
		} {
			if res.Header.Get("Access-Control-Allow-Origin") != "" || res.StatusCode == 405 {
				t.Errorf("%s: %d %v", name, res.StatusCode, res.Header)
			}
		}
	})
	// Clients other than browsers, and proxies, may send the names in any
	// order and case, repeated or over several lines: rs/cors accepts only
	// a sorted, lower-case list, so the ledger sorts it first. Names off
	// the allow-list are refused as before.
	t.Run("PreflightHeadersInAnyOrder", func(t *testing.T) {
		for _, asked := range [][]string{{"if-match, content-type"}, {"Content-Type,If-Match"},
			{"if-match,content-type,IF-MATCH"}, {"if-match", "content-type"}} {
			h := corsPreflight(e, "PUT", asked...).Header()
			if h.Get("Access-Control-Allow-Origin") != appOrigin || h.Get("Access-Control-Allow-Headers") != "content-type,if-match" {
				t.Errorf("%q: %v", asked, h)
			}
		}
		for _, asked := range []string{"if-match, x-secret", "X-Secret,Content-Type"} {
			if h := corsPreflight(e, "PUT", asked).Header(); h.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("%q allowed: %v", asked, h)
			}
		}
	})
	t.Run("Actual", func(t *testing.T) {
		res, _ := e.do("PUT", "/v1/targets/article/a-1/like/u1", "", "Origin", appOrigin)
		h := res.Header
		exposed := strings.Split(strings.ReplaceAll(h.Get("Access-Control-Expose-Headers"), " ", ""), ",")
		for _, want := range []string{"Ledger-Position", "Etag", "Retry-After", "Link"} {
			if !slices.ContainsFunc(exposed, func(s string) bool { return strings.EqualFold(s, want) }) {
				t.Errorf("%s not exposed: %v", want, exposed)
			}
		}
		if res.StatusCode != 200 || h.Get("Access-Control-Allow-Origin") != appOrigin || !varies(h, "Origin") {
			t.Fatalf("actual request: %d %v", res.StatusCode, h)
		}
		hist, _ := e.do("GET", "/v1/events", "", "Origin", appOrigin)
		if !varies(hist.Header, "Origin") || !varies(hist.Header, "Accept") {
			t.Fatalf("history Vary %v", hist.Header.Values("Vary"))
		}
	})
	// A method the API does not serve is a 405 a script can read: it
	// carries the CORS headers like every other error.
	t.Run("MethodNotAllowed", func(t *testing.T) {
		for _, m := range []string{"POST", "PATCH"} {
			res, _ := e.do(m, "/v1/targets/article/a-1", "", "Origin", appOrigin)
			if res.StatusCode != 405 || res.Header.Get("Access-Control-Allow-Origin") != appOrigin || res.Header.Get("Allow") == "" {
				t.Errorf("%s: %d %v", m, res.StatusCode, res.Header)
			}
		}
	})
	t.Run("OtherOrigin", func(t *testing.T) {
		res, _ := e.do("GET", "/v1/targets/article/a-1", "", "Origin", "https://evil.example")
		for k := range res.Header {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Fatalf("non-listed origin got %s", k)
			}
		}
	})
	t.Run("Credentials", func(t *testing.T) {
		e := MustEnv(t, func(c *Config) { c.CORS = CORSConfig{Origins: []string{appOrigin}, Credentials: true} })
		res := e.preflight("/v1/events", appOrigin, "GET", "authorization")
		if res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Credentials") != "true" {
			t.Fatalf("preflight with credentials: %d %v", res.StatusCode, res.Header)
		}
	})
	t.Run("Off", func(t *testing.T) {
		e := MustEnv(t, nil)
		res := e.preflight("/v1/targets/article/a-1", appOrigin, "GET", "")
		if res.StatusCode != 405 || res.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("CORS off: %d %v", res.StatusCode, res.Header)
		}
	})
}

func TestCORSConfigValidate(t *testing.T) {
	for _, bad := range []string{"*", "https://*.example", "app.example", "https://app.example/", "https://app.example/x",
		"ftp://app.example", "https://App.example", "https://u@app.example", "https://app.example?x",
		// Origins no browser sends, which would silently match nothing: a
		// default port (browsers leave it out), a port beyond 65535, a host
		// not in its ASCII (punycode) form, an empty port.
		"https://app.example:443", "http://app.example:80", "https://app.example:99999", "https://app.example:0",
		"https://café.example", "https://app.example:"} {
		if err := (CORSConfig{Origins: []string{bad}}).Validate(); err == nil {
			t.Errorf("origin %q accepted", bad)
		}
	}
	// An address in another form than the browser's serialization (URL
	// standard: IPv4 in dotted decimal, IPv6 compressed in lower-case hex
	// with no embedded IPv4): Chromium sends http://127.0.0.1:5173 for a page
	// opened as http://127.1:5173, and http://[::1]:5173 for [0:0::1].
	for bad, want := range map[string]string{
		"http://127.1:5173":              "http://127.0.0.1:5173",
		"http://0x7f.0.0.1:5173":         "http://127.0.0.1:5173",
		"http://2130706433":              "http://127.0.0.1",
		"http://app.0x10":                "not a host browsers accept",
		"http://v1.2":                    "not a host browsers accept",
		"http://1.2.3.256":               "not a host browsers accept",
		"http://127.0.0.1.:5173":         "http://127.0.0.1:5173",
		"http://[0:0:0:0:0:0:0:1]:5173":  "http://[::1]:5173",
		"http://[::ffff:127.0.0.1]:5173": "http://[::ffff:7f00:1]:5173",
		"http://[1:0:0:2:0:0:0:3]":       "http://[1:0:0:2::3]",
		"http://[fe80::1%25eth0]:5173":   "zone",
		"http://[::1.2.3.4]":             "http://[::102:304]",
		"http://[12345::1]:5173":         "invalid host",
	} {
		err := (CORSConfig{Origins: []string{bad}}).Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("origin %q: %v, want an error naming %q", bad, err, want)
		}
	}
	if err := (CORSConfig{Credentials: true}).Validate(); err == nil {
		t.Error("credentials without origins accepted")
	}
	if err := (CORSConfig{Origins: []string{appOrigin, "http://127.0.0.1:5173", "https://app.example:8443",
		"http://[::1]:5173", "https://xn--caf-dma.example", "http://[2001:db8::1]", "http://[::ffff:7f00:1]:5173",
		"http://10.0.0.2:3000", "http://app.example.:5173"}, Credentials: true}).Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

// TestCORSOnRefusals: an answer refused before routing — the open mode's
// 403 for a Host not addressed to this machine, a GET with a body, a path
// that is not clean — carries the CORS headers like every other error, so
// a script on a listed origin reads its problem instead of a bare network
// error ("Failed to fetch"). The preflight of such a request is answered
// too: without it the browser never sends the request. A non-listed origin
// (the page of a DNS rebinding) still gets none.
func TestCORSOnRefusals(t *testing.T) {
	e := MustEnv(t, func(c *Config) { c.CORS = CORSConfig{Origins: []string{appOrigin}} })
	send := func(method, path, host string, body io.Reader, hv ...string) *httptest.ResponseRecorder {
		r := newRequest(method, path, body)
		r.Host = host
		for i := 0; i+1 < len(hv); i += 2 {
			r.Header.Set(hv[i], hv[i+1])
		}
		rec := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(rec, r)
		return rec
	}
	pre := send("OPTIONS", "/v1/targets/article/a-1", "devbox.test:8080", nil,
		"Origin", appOrigin, "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "ledger-log")
	if pre.Code != 204 || pre.Header().Get("Access-Control-Allow-Origin") != appOrigin {
		t.Errorf("preflight to a foreign Host: %d %v", pre.Code, pre.Header())
	}
	for name, rec := range map[string]*httptest.ResponseRecorder{
		"foreign host": send("GET", "/v1/targets/article/a-1", "devbox.test:8080", nil, "Origin", appOrigin),
		"GET body":     send("GET", "/v1/targets/article/a-1", "127.0.0.1", strings.NewReader("x"), "Origin", appOrigin),
		"unclean path": send("GET", "/v1/targets//a-1", "127.0.0.1", nil, "Origin", appOrigin),
	} {
		if rec.Code < 400 || rec.Header().Get("Access-Control-Allow-Origin") != appOrigin ||
			!strings.Contains(rec.Header().Get("Access-Control-Expose-Headers"), "Ledger-Log") {
			t.Errorf("%s: %d without the CORS headers: %v", name, rec.Code, rec.Header())
		}
	}
	rec := send("GET", "/v1/targets/article/a-1", "evil.example:8080", nil, "Origin", "http://evil.example:8080")
	if rec.Code != 403 {
		t.Errorf("rebinding page: %d, want 403", rec.Code)
	}
	for k := range rec.Header() {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Errorf("rebinding page got %s", k)
		}
	}
}

// TestCORSListsInDocs keeps the CORS header lists that README.md and
// docs/api.md write out equal to the server's: the request headers a
// preflight may ask for and the headers a script may read.
func TestCORSListsInDocs(t *testing.T) {
	for _, c := range []struct {
		doc, from, to string
		want          []string
	}{
		{"../../README.md", "and the headers ", ", asked for in any", corsRequestHeaders},
		{"../../README.md", "origin expose ", " (on errors", corsExposedHeaders},
		{apiDocPath, "and the request headers ", " (echoing", corsRequestHeaders},
		{apiDocPath, "`Access-Control-Expose-Headers: ", "`", corsExposedHeaders},
	} {
		text, err := os.ReadFile(c.doc)
		if err != nil {
			t.Fatal(err)
		}
		_, after, ok := strings.Cut(string(text), c.from)
		list, _, ok2 := strings.Cut(after, c.to)
		if !ok || !ok2 {
			t.Fatalf("%s: no list between %q and %q", c.doc, c.from, c.to)
		}
		var got []string
		for _, name := range strings.FieldsFunc(list, func(r rune) bool { return strings.ContainsRune(", `\n", r) }) {
			if name != "and" {
				got = append(got, name)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s lists %q after %q, the server %q", c.doc, got, c.from, c.want)
		}
	}
}
