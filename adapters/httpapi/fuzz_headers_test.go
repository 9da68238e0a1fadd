package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// FuzzHeaders sends one or two arbitrary values of each header the API
// reads a position, version, tag or log from. Accepted: the value is the
// one the server would send (If-Match "v<n>" as written, a position in
// decimal, the log's own id, an If-None-Match that holds the ETag or *);
// refused: a 400 naming the header (412 for another log's id).
func FuzzHeaders(f *testing.F) {
	for _, s := range []string{`"v0"`, `"v01"`, ` "v7" `, `W/"v1"`, "*", "1", "007", "+1", "1e3", "9223372036854775808", "",
		"0a1b9c1e-8f6d-4f38-9d57-8e3b1b4a1c20", "{0A1B9C1E-8F6D-4F38-9D57-8E3B1B4A1C20}", "urn:uuid:0a1b9c1e-8f6d-4f38-9d57-8e3b1b4a1c20",
		`"2bd1383a14c4d98e.4.5fd0cebd29d9a042"`, `W/"2bd1383a14c4d98e.4.5fd0cebd29d9a042", "x"`} {
		f.Add(s, "", uint8(0))
	}
	f.Add("1", "2", uint8(1))
	const logID = "0a1b9c1e-8f6d-4f38-9d57-8e3b1b4a1c20"
	const etag = `"2bd1383a14c4d98e.4.5fd0cebd29d9a042"`
	s := &Server{logID: logID}
	s.logSet.Store(true) // an open log (a starting node's compares none)
	f.Fuzz(func(t *testing.T, value, second string, which uint8) {
		vs := []string{value}
		if second != "" {
			vs = append(vs, second)
		}
		r, err := http.NewRequest("GET", "/v1/events/stream", nil)
		if err != nil {
			t.Fatal(err)
		}
		one := strings.TrimSpace(value)
		switch which % 5 {
		case 0:
			r.Header[http.CanonicalHeaderKey("If-Match")] = vs
			p := &params{}
			n := p.ifMatch(r)
			checkRefusal(t, p.err(), "If-Match", vs)
			if n != nil && (len(vs) != 1 || one != `"v`+strconv.FormatInt(*n, 10)+`"`) {
				t.Fatalf("If-Match %q accepted as version %d", vs, *n)
			}
		case 1:
			r.Header[http.CanonicalHeaderKey("Ledger-Min-Position")] = vs
			p := &params{}
			n := p.minPosition(r)
			if err := p.err(); err != nil {
				checkRefusal(t, err, "Ledger-Min-Position", vs)
				return
			}
			checkPosition(t, "Ledger-Min-Position", vs, n)
		case 2:
			r.Header[http.CanonicalHeaderKey("Last-Event-ID")] = vs
			after, _, _, err := s.streamParams(r)
			if err != nil {
				checkRefusal(t, err, "Last-Event-ID", vs)
				return
			}
			if len(vs) == 1 && one == "" {
				if after != -1 {
					t.Fatalf("empty Last-Event-ID read as %d", after)
				}
				return
			}
			checkPosition(t, "Last-Event-ID", vs, after)
		case 3:
			r.Header[http.CanonicalHeaderKey("Ledger-Log")] = vs
			err := s.sameLog(r)
			if err == nil && !(len(vs) == 1 && one == "") {
				if id, perr := uuid.Parse(one); len(vs) != 1 || perr != nil || id.String() != logID {
					t.Fatalf("Ledger-Log %q accepted by the log %s", vs, logID)
				}
			}
			if err != nil && problemFor(err, false).Status != 412 {
				checkRefusal(t, err, "Ledger-Log", vs)
			}
		default:
			if etagMatch(vs, etag) && !strings.Contains(strings.Join(vs, ","), etag) && !strings.Contains(strings.Join(vs, ","), "*") {
				t.Fatalf("If-None-Match %q matched %s", vs, etag)
			}
		}
	})
}

// checkRefusal fails unless err is nil or a 400 naming the header.
func checkRefusal(t *testing.T, err error, name string, vs []string) {
	t.Helper()
	if err == nil {
		return
	}
	p := problemFor(err, false)
	if p.Status != 400 || len(p.InvalidParams) != 1 || p.InvalidParams[0].Name != name {
		t.Fatalf("%s %q: %d %+v, want a 400 naming it", name, vs, p.Status, p.InvalidParams)
	}
}

// checkPosition fails unless vs, an accepted position header, is one
// value of ASCII digits whose number is n.
func checkPosition(t *testing.T, name string, vs []string, n int64) {
	t.Helper()
	digits := strings.TrimLeft(strings.TrimSpace(vs[0]), "0")
	if len(vs) != 1 || n < 0 || digits != strconv.FormatInt(n, 10) && !(n == 0 && digits == "") {
		t.Fatalf("%s %q accepted as %d", name, vs, n)
	}
}
