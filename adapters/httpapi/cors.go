package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
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
			errs = append(errs, fmt.Errorf("cors origins: %q: %w", o, err))
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
	if err := validateOriginHost(u); err != nil {
		return err
	}
	return validateOriginPort(u)
}

// validateOriginHost refuses an IP address written otherwise than
// browsers serialize it (URL standard): IPv4 in dotted decimal
// (http://127.1, http://0x7f.0.0.1 and http://2130706433 are sent as
// http://127.0.0.1), IPv6 compressed in lower-case hex without embedded
// IPv4 or zone (http://[0:0::1] is sent as http://[::1]). Such an origin
// would match nothing. A host ending in a number that is no IPv4 address
// (app.0x10, 1.2.3.256) is not a URL a browser opens.
func validateOriginHost(u *url.URL) error {
	host := u.Hostname()
	want := ""
	if strings.HasPrefix(u.Host, "[") {
		a, err := netip.ParseAddr(host)
		switch {
		case err != nil || !a.Is6():
			return fmt.Errorf("not an IPv6 address: %s", host)
		case a.Zone() != "":
			return errors.New("browsers refuse an IPv6 zone in a URL")
		}
		want = "[" + urlIPv6(a) + "]"
	} else if endsInNumber(host) {
		a, ok := urlIPv4(host)
		if !ok {
			return fmt.Errorf("not a host browsers accept: %q ends in a number but is no IPv4 address", host)
		}
		want = a.String()
	} else {
		return nil
	}
	if want == strings.TrimSuffix(u.Host, ":"+u.Port()) {
		return nil
	}
	o := u.Scheme + "://" + want
	if u.Port() != "" {
		o += ":" + u.Port()
	}
	return fmt.Errorf("browsers send this address as %s", o)
}

// endsInNumber is the URL standard's "ends in a number" check of a host:
// its last label (a trailing dot aside) is decimal digits or 0x-hex, so a
// browser parses the host as an IPv4 address.
func endsInNumber(host string) bool {
	parts := strings.Split(host, ".")
	if parts[len(parts)-1] == "" {
		if len(parts) == 1 {
			return false
		}
		parts = parts[:len(parts)-1]
	}
	last := parts[len(parts)-1]
	if last != "" && strings.Trim(last, "0123456789") == "" {
		return true
	}
	_, ok := urlIPv4Number(last)
	return ok
}

// urlIPv4 is the URL standard's IPv4 parser: one to four numbers, each
// decimal, octal (a leading 0) or hex (0x), the last filling the bytes left.
func urlIPv4(host string) (netip.Addr, bool) {
	parts := strings.Split(host, ".")
	if parts[len(parts)-1] == "" && len(parts) > 1 {
		parts = parts[:len(parts)-1]
	}
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var v uint64
	for i, p := range parts {
		n, ok := urlIPv4Number(p)
		if !ok || p == "" {
			return netip.Addr{}, false
		}
		if i < len(parts)-1 {
			if n > 255 {
				return netip.Addr{}, false
			}
			v = v<<8 | n
			continue
		}
		rest := uint(8 * (5 - len(parts)))
		if n >= 1<<rest {
			return netip.Addr{}, false
		}
		v = v<<rest | n
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// urlIPv4Number parses one number of an IPv4 host as the URL standard does.
func urlIPv4Number(s string) (uint64, bool) {
	base := 10
	switch {
	case len(s) >= 2 && (s[:2] == "0x" || s[:2] == "0X"):
		s, base = s[2:], 16
		if s == "" {
			return 0, true
		}
	case len(s) >= 2 && s[0] == '0':
		s, base = s[1:], 8
	case s == "":
		return 0, false
	}
	n, err := strconv.ParseUint(s, base, 64)
	if err != nil || n > 1<<32 {
		return 0, false
	}
	return n, true
}

// urlIPv6 serializes a as the URL standard does: lower-case hex pieces
// without leading zeros, the first longest run of two or more zero pieces
// as "::", no dotted IPv4 part (unlike netip's ::ffff:1.2.3.4).
func urlIPv6(a netip.Addr) string {
	b := a.As16()
	var pieces [8]uint16
	for i := range pieces {
		pieces[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	start, length := -1, 1
	for i := 0; i < 8; {
		j := i
		for j < 8 && pieces[j] == 0 {
			j++
		}
		if j-i > length {
			start, length = i, j-i
		}
		i = max(j, i+1)
	}
	var sb strings.Builder
	for i := 0; i < 8; i++ {
		if i == start {
			sb.WriteString("::")
			i += length - 1
			continue
		}
		if sb.Len() > 0 && !strings.HasSuffix(sb.String(), ":") {
			sb.WriteByte(':')
		}
		sb.WriteString(strconv.FormatUint(uint64(pieces[i]), 16))
	}
	return sb.String()
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
// instead of the 405). A preflight is shown with its requested headers
// sorted (sortedRequestHeaders).
func corsView(r *http.Request) *http.Request {
	switch r.Method {
	case http.MethodOptions:
		return sortedRequestHeaders(r)
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete:
		return r
	}
	v := r.Clone(r.Context())
	v.Method = http.MethodGet
	return v
}

// maxRequestHeadersList bounds the Access-Control-Request-Headers that
// sortedRequestHeaders rewrites: the allow-list's names fit many times
// over; a longer list is left to rs/cors, which refuses it.
const maxRequestHeadersList = 1024

// sortedRequestHeaders is the preflight r with its
// Access-Control-Request-Headers as one sorted, lower-case list without
// repeats. rs/cors v1.11.1 accepts only that form (browsers send it, per
// the Fetch standard) and answers any other, such as "if-match,
// content-type" from another client or a proxy, with no CORS headers at
// all. Each name must still be on the allow-list.
func sortedRequestHeaders(r *http.Request) *http.Request {
	vs := r.Header.Values("Access-Control-Request-Headers")
	if len(vs) == 0 || len(strings.Join(vs, ",")) > maxRequestHeadersList {
		return r
	}
	var names []string
	for _, v := range vs {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.ToLower(strings.Trim(name, " \t")); name != "" {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	list := strings.Join(slices.Compact(names), ",")
	if len(vs) == 1 && vs[0] == list {
		return r
	}
	v := r.Clone(r.Context())
	v.Header.Set("Access-Control-Request-Headers", list)
	return v
}

// isPreflight reports whether r is a CORS preflight request.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
}
