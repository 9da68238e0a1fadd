package floor

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// New returns the floor's handler.
func New() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/targets/{type}/{id}/{kind}/{user}", write(true))
	mux.HandleFunc("DELETE /v1/targets/{type}/{id}/{kind}/{user}", write(false))
	mux.HandleFunc("GET /v1/targets/{type}/{id}", target)
	mux.HandleFunc("GET /v1/targets", feed)
	mux.HandleFunc("GET /v1/targets/{type}/{id}/{kind}", list)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	return mux
}

// The ledger's constant parts: a target's counts and viewer flags (the
// default kinds), and a request id of a UUID's length.
const (
	counts    = `"counts":{"collect":0,"like":1}`
	viewer    = `"viewer":{"collect":false,"like":true}`
	requestID = "01a24b77-f79d-7035-a8bc-2e6078981bdc"
	position  = 1
)

var bufs = sync.Pool{New: func() any { return new([]byte) }}

// send answers 200 with body b and the headers the ledger sends with a
// read or a write.
func send(w http.ResponseWriter, b []byte) {
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Etag", `"1ae6ec28039ba9e2.1"`)
	h.Set("Ledger-Log", "2f073d63-aba8-4a3b-a638-40c93f96cd3d")
	h.Set("Ledger-Position", strconv.Itoa(position))
	h.Set("X-Request-Id", requestID)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// answer builds a body with fill into a pooled buffer and sends it.
func answer(w http.ResponseWriter, fill func(b []byte) []byte) {
	buf := bufs.Get().(*[]byte)
	b := append(fill((*buf)[:0]), '\n')
	send(w, b)
	*buf = b
	bufs.Put(buf)
}

func appendTarget(b []byte, ttype, id string) []byte {
	b = append(b, `{"type":"`...)
	b = append(b, ttype...)
	b = append(b, `","id":"`...)
	b = append(b, id...)
	return append(b, `"}`...)
}

// appendView is one target's view, as in a single-target read or a feed
// page's item.
func appendView(b []byte, ttype, id string, withViewer bool) []byte {
	b = append(b, `{"target":`...)
	b = appendTarget(b, ttype, id)
	b = append(b, ',')
	b = append(b, counts...)
	if withViewer {
		b = append(b, ',')
		b = append(b, viewer...)
	}
	b = append(b, `,"position":`...)
	b = strconv.AppendInt(b, position, 10)
	return append(b, '}')
}

func write(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		answer(w, func(b []byte) []byte {
			b = append(b, `{"changed":true,"target":`...)
			b = appendTarget(b, r.PathValue("type"), r.PathValue("id"))
			b = append(b, `,"user":"`...)
			b = append(b, r.PathValue("user")...)
			b = append(b, `","kind":"`...)
			b = append(b, r.PathValue("kind")...)
			b = append(b, `","active":`...)
			b = strconv.AppendBool(b, on)
			b = append(b, ',')
			b = append(b, viewer...)
			b = append(b, ',')
			b = append(b, counts...)
			b = append(b, `,"stream_version":1,"position":`...)
			b = strconv.AppendInt(b, position, 10)
			return append(b, '}')
		})
	}
}

func target(w http.ResponseWriter, r *http.Request) {
	withViewer := r.URL.Query().Get("viewer") != ""
	answer(w, func(b []byte) []byte {
		return appendView(b, r.PathValue("type"), r.PathValue("id"), withViewer)
	})
}

// feed answers a page of the targets named by t=type/id, in order.
func feed(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	withViewer := q.Get("viewer") != ""
	answer(w, func(b []byte) []byte {
		b = append(b, `{"items":[`...)
		for i, t := range q["t"] {
			if i > 0 {
				b = append(b, ',')
			}
			ttype, id, _ := strings.Cut(t, "/")
			b = appendView(b, ttype, id, withViewer)
		}
		b = append(b, `],"position":`...)
		b = strconv.AppendInt(b, position, 10)
		return append(b, '}')
	})
}

// list answers a "who liked it" page of one actor.
func list(w http.ResponseWriter, _ *http.Request) {
	answer(w, func(b []byte) []byte {
		return append(b, `{"items":[{"user":"u1","since":"2026-12-06T13:08:02.997Z"}]}`...)
	})
}
