package httpapi

import (
	"encoding/json"
	"slices"
	"strconv"
	"sync"

	"github.com/interactionledger/ledger/adapters/eventcodec"
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

// appendMap appends m with its keys sorted, as encoding/json does.
func appendMap[V any](b []byte, m map[string]V, value func([]byte, V) []byte) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = value(appendKey(b, k), m[k])
	}
	return append(b, '}')
}

func appendInt(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }

func appendBool(b []byte, v bool) []byte { return strconv.AppendBool(b, v) }

func (r targetResponse) appendJSON(b []byte) []byte {
	b = append(b, `{"target":`...)
	b = appendTarget(b, r.Target)
	b = append(b, `,"counts":`...)
	b = appendMap(b, r.Counts, appendInt)
	if len(r.Viewer) > 0 { // omitempty
		b = append(b, `,"viewer":`...)
		b = appendMap(b, r.Viewer, appendBool)
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
	b = appendMap(b, r.Viewer, appendBool)
	b = append(b, `,"counts":`...)
	b = appendMap(b, r.Counts, appendInt)
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
