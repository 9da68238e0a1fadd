package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/rs/cors"
)

// CORSConfig lets browser clients on other origins call the API. Its zero
// value is off: no CORS headers, and a preflight is 405 like any OPTIONS.
type CORSConfig struct {
	// Origins are the exact origins allowed ("https://app.example",
	// scheme, host and port only); no wildcard.
	Origins []string
	// Credentials sends Access-Control-Allow-Credentials, so a browser may
	// send cookies or HTTP authentication along (bearer tokens set by
	// script need no credentials).
	Credentials bool
}

// The request headers a preflight may ask for, and the response headers a
// script may read.
var (
	corsRequestHeaders = []string{"Authorization", "Content-Type", "Idempotency-Key", "If-Match",
		"If-None-Match", "Ledger-Min-Position", "Ledger-Log", "Last-Event-ID", "X-Request-ID"}
	corsExposedHeaders = []string{"Ledger-Position", "Ledger-Log", "ETag", "Retry-After", "Link", "X-Request-ID"}
)

// Validate returns every problem with c, joined.
func (c CORSConfig) Validate() error {
	var errs []error
	for _, o := range c.Origins {
		if err := validateOrigin(o); err != nil {
			errs = append(errs, fmt.Errorf("cors origin %q: %w", o, err))
		}
	}
	if c.Credentials && len(c.Origins) == 0 {
		errs = append(errs, errors.New("cors credentials need at least one cors origin"))
	}
	return invalidConfig(errors.Join(errs...))
}

// validateOrigin accepts what a browser sends as Origin: scheme://host[:port].
func validateOrigin(o string) error {
	u, err := url.Parse(o)
	switch {
	case err != nil:
		return err
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("want an http or https origin such as https://app.example")
	case u.Host == "" || strings.Contains(u.Host, "*"):
		return errors.New("want an exact host (no wildcard)")
	case u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(o, "?") || strings.HasSuffix(o, "#"):
		return errors.New("an origin has no path, query, fragment or user")
	case strings.ToLower(o) != o:
		return errors.New("browsers send origins in lower case")
	case !isASCII(u.Host):
		return errors.New("browsers send the host in its ASCII form (punycode, xn--...)")
	}
	return validateOriginPort(u)
}

// validateOriginPort refuses a port no browser sends, which would match
// nothing: an empty one, one outside 1..65535 or with leading zeros, or
// the scheme's default (browsers leave it out of Origin).
func validateOriginPort(u *url.URL) error {
	p := u.Port()
	if p == "" && !strings.HasSuffix(u.Host, ":") {
		return nil
	}
	n, err := strconv.Atoi(p)
	switch {
	case err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p:
		return fmt.Errorf("port %q: want a number 1..65535, as browsers write it", p)
	case u.Scheme == "https" && n == 443, u.Scheme == "http" && n == 80:
		return fmt.Errorf("browsers leave the default port out: want %s://%s", u.Scheme, strings.TrimSuffix(u.Host, ":"+p))
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// newCORS returns the CORS handler of c, nil when c is off.
func newCORS(c CORSConfig) *cors.Cors {
	if len(c.Origins) == 0 {
		return nil
	}
	return cors.New(cors.Options{
		AllowedOrigins:   c.Origins,
		AllowedMethods:   []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete},
		AllowedHeaders:   corsRequestHeaders,
		ExposedHeaders:   corsExposedHeaders,
		AllowCredentials: c.Credentials,
		MaxAge:           600,
	})
}

// corsView is r as rs/cors should see it: an actual request with a method
// the API does not serve (POST, PATCH) is shown as a GET, so that its 405
// carries the CORS headers like every other error (rs/cors skips them for
// a method it does not allow, and the script would see a network error
// instead of the 405). Preflights are shown as they are.
func corsView(r *http.Request) *http.Request {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions:
		return r
	}
	v := r.Clone(r.Context())
	v.Method = http.MethodGet
	return v
}

// isPreflight reports whether r is a CORS preflight request.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
}
