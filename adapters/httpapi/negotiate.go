package httpapi

import (
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// negotiate picks the offer the Accept headers prefer: the highest q of
// the most specific matching range, ties going to the earlier offer. No
// Accept header means the first offer. ok is false when nothing fits.
func negotiate(accept []string, offers ...string) (string, bool) {
	ranges := parseAccept(accept)
	if len(ranges) == 0 {
		return offers[0], true
	}
	best, bestQ := "", 0.0
	for _, offer := range offers {
		if q := qualityOf(ranges, offer); q > bestQ {
			best, bestQ = offer, q
		}
	}
	return best, bestQ > 0
}

type mediaRange struct {
	typ, sub string
	q        float64
}

func parseAccept(headers []string) []mediaRange {
	var out []mediaRange
	for _, h := range headers {
		for part := range strings.SplitSeq(h, ",") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			mt, ps, err := mime.ParseMediaType(part)
			if err != nil {
				continue
			}
			typ, sub, ok := strings.Cut(mt, "/")
			if !ok {
				continue
			}
			q := 1.0
			if s, ok := ps["q"]; ok {
				if v, err := strconv.ParseFloat(s, 64); err == nil && v >= 0 && v <= 1 {
					q = v
				} else {
					q = 0
				}
			}
			out = append(out, mediaRange{typ: typ, sub: sub, q: q})
		}
	}
	return out
}

// qualityOf returns the q of the most specific range matching offer.
func qualityOf(ranges []mediaRange, offer string) float64 {
	typ, sub, _ := strings.Cut(offer, "/")
	q, spec := 0.0, -1
	for _, r := range ranges {
		s := -1
		switch {
		case r.typ == typ && r.sub == sub:
			s = 2
		case r.typ == typ && r.sub == "*":
			s = 1
		case r.typ == "*" && r.sub == "*":
			s = 0
		}
		if s > spec {
			q, spec = r.q, s
		}
	}
	return q
}

// acceptJSON refuses a request whose Accept headers rule out JSON.
func acceptJSON(r *http.Request) error {
	if _, ok := negotiate(r.Header.Values("Accept"), "application/json"); !ok {
		return errNotAcceptable(r.Method + " " + clip(r.URL.EscapedPath()) + " produces application/json")
	}
	return nil
}

// isJSON reports whether a Content-Type names JSON (application/json or
// any application/*+json).
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}
