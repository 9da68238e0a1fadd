package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/interactionledger/ledger/adapters/eventcodec"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

// The hot responses (targets, feed pages, writes, list pages) encode
// themselves by appending, byte for byte what encoding/json produces for
// the same values (a test compares the two): reflection and sorting map
// keys were a tenth of the server's CPU under the bench http mix.

// jsonAppender is a response that appends its own JSON encoding.
type jsonAppender interface {
	appendJSON(b []byte) []byte
}

// bufPool recycles response buffers.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooledBuf keeps one huge response from pinning its buffer.
const maxPooledBuf = 64 << 10

// appendString appends s as a JSON string. Names, ids, cursors and times
// need no escaping and take the fast path; anything else is encoded by
// encoding/json, so the escaping rules are exactly its rules.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			enc, _ := json.Marshal(s) // a string always encodes
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendKey(b []byte, key string) []byte {
	return append(appendString(b, key), ':')
}

func appendTarget(b []byte, t eventcodec.TargetJSON) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, t.Type)
	b = append(b, `,"id":`...)
	b = appendString(b, t.ID)
	return append(b, '}')
}

// appendMap appends m with its keys sorted, as encoding/json does; order
// is the configured kinds' names, sorted.
func appendMap[V any](b []byte, m map[string]V, order []string, value func([]byte, V) []byte) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	// Entries go into a small array on the stack (a map holds one entry
	// per configured kind): no allocation for the few kinds a server has.
	var small [8]mapEntry[V]
	entries, ok := inOrder(small[:0], m, order)
	if !ok {
		entries = small[:0]
		for k, v := range m {
			entries = append(entries, mapEntry[V]{k, v})
		}
		slices.SortFunc(entries, func(x, y mapEntry[V]) int { return strings.Compare(x.key, y.key) })
	}
	b = append(b, '{')
	for i, e := range entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = value(appendKey(b, e.key), e.value)
	}
	return append(b, '}')
}

// inOrder appends m's entries to dst in order's order when m's keys are
// exactly order's names, as the projections' maps (one entry per
// configured kind) are: a lookup per name is ~5x cheaper than ranging
// over a small map and sorting (in a profile at an offered 10,000 req/s
// the range took ~230 ns a map, ~2 % of the server's CPU).
func inOrder[V any](dst []mapEntry[V], m map[string]V, order []string) ([]mapEntry[V], bool) {
	if len(m) != len(order) {
		return dst, false
	}
	for _, k := range order {
		v, ok := m[k]
		if !ok {
			return dst, false
		}
		dst = append(dst, mapEntry[V]{k, v})
	}
	return dst, true
}

// mapEntry is one key and value of a map that appendMap writes.
type mapEntry[V any] struct {
	key   string
	value V
}

func appendInt(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }

func appendBool(b []byte, v bool) []byte { return strconv.AppendBool(b, v) }

func (r targetResponse) appendJSON(b []byte) []byte {
	b = append(b, `{"target":`...)
	b = appendTarget(b, r.Target)
	b = append(b, `,"counts":`...)
	b = appendMap(b, r.Counts, r.order, appendInt)
	if len(r.Viewer) > 0 { // omitempty
		b = append(b, `,"viewer":`...)
		b = appendMap(b, r.Viewer, r.order, appendBool)
	}
	b = append(b, `,"position":`...)
	b = appendInt(b, r.Position)
	return append(b, '}')
}

func (r batchResponse) appendJSON(b []byte) []byte {
	b = append(b, `{"items":`...)
	b = appendList(b, r.Items)
	b = append(b, `,"position":`...)
	b = appendInt(b, r.Position)
	return append(b, '}')
}

func (r writeResponse) appendJSON(b []byte) []byte {
	b = append(b, `{"changed":`...)
	b = appendBool(b, r.Changed)
	b = append(b, `,"target":`...)
	b = appendTarget(b, r.Target)
	b = append(b, `,"user":`...)
	b = appendString(b, r.User)
	b = append(b, `,"kind":`...)
	b = appendString(b, r.Kind)
	b = append(b, `,"active":`...)
	b = appendBool(b, r.Active)
	b = append(b, `,"viewer":`...)
	b = appendMap(b, r.Viewer, r.order, appendBool)
	b = append(b, `,"counts":`...)
	b = appendMap(b, r.Counts, r.order, appendInt)
	b = append(b, `,"stream_version":`...)
	b = appendInt(b, r.StreamVersion)
	b = append(b, `,"position":`...)
	b = appendInt(b, r.Position)
	return append(b, '}')
}

func (a actorJSON) appendJSON(b []byte) []byte {
	b = append(b, `{"user":`...)
	b = appendString(b, a.User)
	b = append(b, `,"since":`...)
	b = appendString(b, a.Since)
	return append(b, '}')
}

func (it itemJSON) appendJSON(b []byte) []byte {
	b = append(b, `{"target":`...)
	b = appendTarget(b, it.Target)
	b = append(b, `,"since":`...)
	b = appendString(b, it.Since)
	return append(b, '}')
}

func (p pageResponse[T]) appendJSON(b []byte) []byte {
	b = append(b, `{"items":`...)
	b = appendList(b, p.Items)
	if p.NextCursor != "" { // omitempty
		b = append(b, `,"next_cursor":`...)
		b = appendString(b, p.NextCursor)
	}
	return append(b, '}')
}

// appendList appends items as a JSON array (null when nil, as
// encoding/json does).
func appendList[T jsonAppender](b []byte, items []T) []byte {
	if items == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = it.appendJSON(b)
	}
	return append(b, ']')
}

func targetJSON(t domain.Target) eventcodec.TargetJSON {
	return eventcodec.TargetJSON{Type: t.Type(), ID: t.ID()}
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	if a, ok := v.(jsonAppender); ok {
		buf := bufPool.Get().(*[]byte)
		b := append(a.appendJSON((*buf)[:0]), '\n')
		sendJSON(w, status, b)
		if cap(b) <= maxPooledBuf {
			*buf = b
			bufPool.Put(buf)
		}
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	sendJSON(w, status, append(b, '\n'))
	return nil
}

// sendJSON answers with b, whose length it declares: net/http then sends
// the body as it is instead of in chunks (a feed page is larger than its
// buffer before chunking).
func sendJSON(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func formatTime(t time.Time) string { return t.UTC().Format(eventcodec.TimeFormat) }

// targetResponse is one target's view (docs/api.md, "Reads").
type targetResponse struct {
	Target   eventcodec.TargetJSON `json:"target"`
	Counts   map[string]int64      `json:"counts"`
	Viewer   map[string]bool       `json:"viewer,omitempty"`
	Position int64                 `json:"position"`

	order []string // the configured kinds, sorted (appendMap)
}

type batchResponse struct {
	Items    []targetResponse `json:"items"`
	Position int64            `json:"position"`
}

type actorJSON struct {
	User  string `json:"user"`
	Since string `json:"since"`
}

type itemJSON struct {
	Target eventcodec.TargetJSON `json:"target"`
	Since  string                `json:"since"`
}

type pageResponse[T jsonAppender] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

func (s *Server) targetResponse(v projections.TargetView, withViewer bool) targetResponse {
	out := targetResponse{Target: targetJSON(v.Target), Counts: v.Counts, Position: v.Position, order: s.kindOrder}
	if withViewer {
		out.Viewer = v.Viewer
	}
	return out
}

// writeResponse is the body of a write (docs/api.md, "Writes").
type writeResponse struct {
	Changed       bool                  `json:"changed"`
	Target        eventcodec.TargetJSON `json:"target"`
	User          string                `json:"user"`
	Kind          string                `json:"kind"`
	Active        bool                  `json:"active"`
	Viewer        map[string]bool       `json:"viewer"`
	Counts        map[string]int64      `json:"counts"`
	StreamVersion int64                 `json:"stream_version"`
	Position      int64                 `json:"position"`

	order []string // the configured kinds, sorted (appendMap)
}

func (s *Server) writeResponse(req domain.SetRequest, out domain.Outcome, view projections.TargetView) writeResponse {
	return writeResponse{
		Changed:       out.Changed,
		Target:        targetJSON(req.Target),
		User:          req.User.String(),
		Kind:          req.Kind.String(),
		Active:        out.Active,
		Viewer:        view.Viewer,
		Counts:        view.Counts,
		StreamVersion: out.StreamVersion,
		Position:      out.Position,
		order:         s.kindOrder,
	}
}
