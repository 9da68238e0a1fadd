package httpapi

import (
	"testing"
	"testing/fstest"
)

func mustSiteEnv(tb testing.TB) *testEnv {
	tb.Helper()
	site := fstest.MapFS{
		"index.html":          {Data: []byte("<!doctype html><title>demo</title>")},
		"assets/index-ab1.js": {Data: []byte("console.log(1)")},
		"assets/sub/x.css":    {Data: []byte("body{}")},
	}
	return mustEnvDeps(tb, nil, func(d *Deps) { d.Site = site })
}

func TestSite(t *testing.T) {
	e := mustSiteEnv(t)
	t.Run("Index", func(t *testing.T) {
		res, b := e.do("GET", "/", "")
		if res.StatusCode != 200 || string(b) != "<!doctype html><title>demo</title>" {
			t.Fatalf("status %d body %q", res.StatusCode, b)
		}
		if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Fatalf("Content-Type %q", ct)
		}
		if res.Header.Get("Content-Security-Policy") == "" || res.Header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("headers %v", res.Header)
		}
		etag := res.Header.Get("ETag")
		if again, _ := e.do("GET", "/", "", "If-None-Match", etag); etag == "" || again.StatusCode != 304 {
			t.Fatalf("revalidation with ETag %q: status %d", etag, again.StatusCode)
		}
	})
	t.Run("Asset", func(t *testing.T) {
		res, b := e.do("GET", "/assets/index-ab1.js", "")
		if res.StatusCode != 200 || string(b) != "console.log(1)" || res.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
			t.Fatalf("status %d type %q body %q", res.StatusCode, res.Header.Get("Content-Type"), b)
		}
		if res.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
			t.Fatalf("Cache-Control %q", res.Header.Get("Cache-Control"))
		}
		e.expect(200, "GET", "/assets/sub/x.css", "")
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		for _, p := range []string{"/assets/nope.js", "/assets/sub", "/assets/", "/assets", "/assets/index-ab1.js/", "/index.html", "/a-1", "/v1/nope"} {
			e.expect(404, "GET", p, "")
		}
	})
	t.Run("ErrMethod", func(t *testing.T) {
		e.expect(405, "POST", "/", "")
		e.expect(405, "DELETE", "/assets/index-ab1.js", "")
	})
	t.Run("APINotShadowed", func(t *testing.T) {
		e.expect(200, "GET", "/healthz", "")
		e.expect(200, "GET", "/openapi.json", "")
		e.expect(200, "GET", "/v1/targets/article/a-1", "")
	})
	t.Run("NotInRoutes", func(t *testing.T) {
		for _, r := range e.srv.Routes() {
			if r == "GET /{$}" || r == "GET /assets/{file...}" {
				t.Fatalf("the page's route %q is listed as an API route", r)
			}
		}
	})
}

func TestNoSite(t *testing.T) {
	e := MustEnv(t, nil)
	e.expect(404, "GET", "/", "")
	e.expect(404, "GET", "/assets/index-ab1.js", "")
}

// TestSiteWhileOpening: the page and its assets need no read model, so a
// node whose views file is still opening serves them, and the page's
// client then retries the API's 503 "starting" (Retry-After). They were
// 503 "starting" too, and a browser opened on a starting node showed a
// problem's JSON instead of the page.
func TestSiteWhileOpening(t *testing.T) {
	e := mustSiteEnv(t)
	deps := e.srv.deps
	deps.Opening = NewOpening("opening the views file")
	srv, err := New(e.srv.cfg, deps, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := e.serving(srv)
	if res, b := q.do("GET", "/", ""); res.StatusCode != 200 || string(b) != "<!doctype html><title>demo</title>" {
		t.Errorf("the page while opening: %d %s", res.StatusCode, b)
	}
	if res, b := q.do("GET", "/assets/index-ab1.js", ""); res.StatusCode != 200 || string(b) != "console.log(1)" {
		t.Errorf("an asset while opening: %d %s", res.StatusCode, b)
	}
	q.expect(404, "GET", "/assets/missing.js", "")
	q.expect(503, "GET", "/v1/targets/article/a-1", "")
}
