package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestServeDemoPage: `ledger serve` serves the embedded demo at / and its
// assets, while the API and the problem 404 stay as they were.
func TestServeDemoPage(t *testing.T) {
	s := startServe(t, filepath.Join(t.TempDir(), "ledger.db"), nil)
	res, body := s.call(t, "GET", "/", "")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(body), `<div id="root">`) {
		t.Fatalf("GET /: %d %q\n%s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	scripts := regexp.MustCompile(`src="(/assets/[^"]+\.js)"`).FindStringSubmatch(string(body))
	if scripts == nil {
		t.Fatalf("no script in the page:\n%s", body)
	}
	if res, _ := s.call(t, "GET", scripts[1], ""); res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("GET %s: %d %q", scripts[1], res.StatusCode, res.Header.Get("Content-Type"))
	}
	if res, _ := s.call(t, "GET", "/v1/targets/article/a-1", ""); res.StatusCode != 200 {
		t.Fatalf("GET /v1/targets/article/a-1: %d", res.StatusCode)
	}
	if res, _ := s.call(t, "GET", "/articles", ""); res.StatusCode != 404 || res.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("GET /articles: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
}
