package eventcodec

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/interactionledger/ledger/domain"
)

// Row is an event as the stores keep it: one row of the log joined with its
// stream, times in unix nanoseconds and metadata as a JSON object. Each
// store scans its driver's row into one; it holds nothing the driver may
// reuse, so rows can be decoded after the next one is scanned.
type Row struct {
	Position, StreamKey, Version, Occurred, Recorded int64
	ID                                               uuid.UUID
	Type, Kind                                       string
	Metadata                                         string // "" when the event has none
	User, TargetType, TargetID                       string
}

// RowDecoder turns stored rows into events. It caches the domain values of
// the streams and kinds it has seen, so that decoding a long log
// validates each stream's identifiers once rather than once per row. It is
// not safe for concurrent use.
type RowDecoder struct {
	streams map[int64]domain.StreamID
	kinds   map[string]domain.Kind
}

// maxCachedStreams bounds the stream cache of a RowDecoder.
const maxCachedStreams = 1 << 16

// Decode validates r and returns its event. Errors name the position and
// the column that is not what the ledger writes (storedError).
func (d *RowDecoder) Decode(r *Row) (domain.Event, error) {
	t, err := d.Toggle(r)
	if err != nil {
		return domain.Event{}, err
	}
	e := domain.Event{
		ID: r.ID, Type: domain.EventType(r.Type), Kind: t.Kind, User: t.Stream.User, Target: t.Stream.Target,
		StreamVersion: r.Version, Position: r.Position, OccurredAt: t.OccurredAt, RecordedAt: time.Unix(0, r.Recorded).UTC(),
	}
	if r.Metadata != "" {
		if e.Metadata, err = DecodeMetadata(r.Metadata); err != nil {
			return domain.Event{}, storedError(r, "metadata", err)
		}
	}
	return e, nil
}

// Toggle validates the columns of r that a toggle holds (position, type,
// kind, stream, time) and returns the event's toggle, for reads that need
// no ids, versions or metadata (a rebuild's latest toggles).
func (d *RowDecoder) Toggle(r *Row) (domain.Toggle, error) {
	typ, err := domain.ParseEventType(r.Type)
	if err != nil {
		return domain.Toggle{}, storedError(r, "type", err)
	}
	kind, err := d.kind(r.Kind)
	if err != nil {
		return domain.Toggle{}, storedError(r, "kind", err)
	}
	stream, err := d.stream(r)
	if err != nil {
		return domain.Toggle{}, storedError(r, "stream", err)
	}
	return domain.Toggle{Stream: stream, Kind: kind, On: typ == domain.EventAdded, Position: r.Position,
		OccurredAt: time.Unix(0, r.Occurred).UTC()}, nil
}

// storedError is the error of a column of r that does not decode
// (domain.StoredError).
func storedError(r *Row, column string, err error) error {
	return domain.StoredError(fmt.Sprintf("event %d: stored %s", r.Position, column), err)
}

func (d *RowDecoder) kind(name string) (domain.Kind, error) {
	if k, ok := d.kinds[name]; ok {
		return k, nil
	}
	k, err := domain.ParseKind(name)
	if err != nil {
		return domain.Kind{}, err
	}
	if d.kinds == nil {
		d.kinds = make(map[string]domain.Kind)
	}
	d.kinds[name] = k
	return k, nil
}

func (d *RowDecoder) stream(r *Row) (domain.StreamID, error) {
	if st, ok := d.streams[r.StreamKey]; ok {
		return st, nil
	}
	user, err := domain.NewUserID(r.User)
	if err != nil {
		return domain.StreamID{}, err
	}
	target, err := domain.NewTarget(r.TargetType, r.TargetID)
	if err != nil {
		return domain.StreamID{}, err
	}
	if d.streams == nil || len(d.streams) >= maxCachedStreams {
		d.streams = make(map[int64]domain.StreamID)
	}
	st := domain.StreamID{User: user, Target: target}
	d.streams[r.StreamKey] = st
	return st, nil
}

// EncodeMetadata is the stored form of m: its JSON object, or "" when it
// is empty. Entries that need no escaping (nearly all) are written by
// hand, byte for byte what encoding/json writes (a test compares the two),
// sparing every append its reflection; anything else goes to
// encoding/json.
func EncodeMetadata(m domain.Metadata) string {
	if m.Len() == 0 {
		return ""
	}
	b := make([]byte, 1, 64)
	b[0] = '{'
	for k, v := range m.All() {
		if !plainJSON(k) || !plainJSON(v) {
			enc, _ := json.Marshal(m) // a map of strings cannot fail to encode
			return string(enc)
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(append(append(append(append(b, '"'), k...), `":"`...), v...), '"')
	}
	return string(append(b, '}'))
}

// plainJSON reports whether encoding/json writes s between quotes as it
// is: printable ASCII without '"', '\\' and the HTML characters it escapes.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// DecodeMetadata decodes the JSON object a store holds. Objects without
// escapes (nearly all) are split by hand, which is several times faster
// than encoding/json on the history-read path; anything else goes to
// encoding/json. Either way the result is validated as stored metadata.
func DecodeMetadata(s string) (domain.Metadata, error) {
	if m, ok := splitFlatObject(s); ok {
		return domain.DecodeMetadata(m)
	}
	var m domain.Metadata
	err := json.Unmarshal([]byte(s), &m)
	return m, err
}

// splitFlatObject parses {"k":"v",...} whose strings hold no backslash.
func splitFlatObject(s string) (map[string]string, bool) {
	if strings.IndexByte(s, '\\') >= 0 || len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, false
	}
	body := s[1 : len(s)-1]
	m := make(map[string]string, strings.Count(body, `":"`))
	for body != "" {
		k, rest, ok := quoted(body)
		if !ok || rest == "" || rest[0] != ':' {
			return nil, false
		}
		v, rest, ok := quoted(rest[1:])
		if !ok {
			return nil, false
		}
		m[k] = v
		if rest == "" {
			break
		}
		if rest[0] != ',' || len(rest) == 1 {
			return nil, false
		}
		body = rest[1:]
	}
	return m, true
}

// quoted splits a leading "string" (without escapes) from s.
func quoted(s string) (str, rest string, ok bool) {
	if s == "" || s[0] != '"' {
		return "", "", false
	}
	end := strings.IndexByte(s[1:], '"')
	if end < 0 {
		return "", "", false
	}
	return s[1 : 1+end], s[2+end:], true
}
