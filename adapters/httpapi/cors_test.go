package httpapi

import (
	"net/http"
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
	if err := (CORSConfig{Credentials: true}).Validate(); err == nil {
		t.Error("credentials without origins accepted")
	}
	if err := (CORSConfig{Origins: []string{appOrigin, "http://127.0.0.1:5173", "https://app.example:8443",
		"http://[::1]:5173", "https://xn--caf-dma.example"}, Credentials: true}).Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}
