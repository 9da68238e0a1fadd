package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/interactionledger/ledger/domain"
)

// sitePolicy is the Content-Security-Policy of the page: the built front
// end loads only its own scripts and styles and talks only to this server.
const sitePolicy = "default-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

// registerSite serves Deps.Site at / and /assets/{file...}. These routes
// are the page, not the API: they stay out of Routes() and the OpenAPI
// document. They are exact patterns, never a catch-all, so an unknown path
// still gets the mux's problem 404 and /v1, /healthz... are never shadowed.
func (s *Server) registerSite() {
	if s.deps.Site == nil {
		return
	}
	s.mux.HandleFunc("GET /{$}", s.serve(s.index))
	s.mux.HandleFunc("GET /assets/{file...}", s.serve(s.asset))
	// Without it the mux would answer /assets with a redirect to /assets/.
	s.mux.HandleFunc("GET /assets", s.serve(func(http.ResponseWriter, *http.Request) error { return siteMissing("assets", nil) }))
}

// index serves index.html with an ETag of its content and no-cache, so a
// new build is picked up at once while an unchanged page costs a 304.
func (s *Server) index(w http.ResponseWriter, r *http.Request) error {
	b, err := fs.ReadFile(s.deps.Site, "index.html")
	if err != nil {
		return siteMissing("index.html", err)
	}
	sum := sha256.Sum256(b)
	h := w.Header()
	h.Set("ETag", `"`+hex.EncodeToString(sum[:8])+`"`)
	h.Set("Cache-Control", "no-cache")
	setPageHeaders(h)
	http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(b))
	return nil
}

// asset serves a built file. Vite names them by a hash of their content,
// so they may be cached for ever.
func (s *Server) asset(w http.ResponseWriter, r *http.Request) error {
	// Not path.Join, which would clean "x.js/" into "x.js" and serve a
	// cacheable file at a name that is not its own.
	file := r.PathValue("file")
	name := "assets/" + file
	if file == "" || strings.HasSuffix(file, "/") {
		return siteMissing(name, nil) // a folder's name, not a file's
	}
	if !fs.ValidPath(name) {
		return paramErrors{{Name: "path", Reason: "not a valid asset name"}}
	}
	st, err := fs.Stat(s.deps.Site, name)
	if err != nil || st.IsDir() {
		return siteMissing(name, err)
	}
	h := w.Header()
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	setPageHeaders(h)
	http.ServeFileFS(w, r, s.deps.Site, name)
	return nil
}

func setPageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", sitePolicy)
	h.Set("Referrer-Policy", "no-referrer")
}

// siteMissing is the problem 404 of a file the build does not have.
func siteMissing(name string, err error) error {
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: no such file: %s", domain.ErrNotFound, clip(name))
	}
	return fmt.Errorf("read %s: %w", name, err)
}
