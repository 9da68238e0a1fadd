package domain

import (
	"encoding/json"
	"iter"
	"maps"
	"slices"
	"unicode/utf8"
)

// Metadata limits, from the HTTP contract (docs/api.md). They bound what a
// caller sends; the ledger's own entries (the reserved keys) come on top.
const (
	MaxMetadataEntries  = 16
	MaxMetadataKeyLen   = 64
	MaxMetadataValueLen = 512
)

// The reserved metadata keys: the ledger writes them itself, so a caller
// may not send them.
const (
	MetaRequestID      = "request_id"
	MetaIdempotencyKey = "idempotency_key"
)

var reservedKeys = []string{MetaIdempotencyKey, MetaRequestID}

// Metadata is free string data stored with an event: a caller's entries
// (source, ...) and the ledger's own (request id, idempotency key). It is a
// validated value, immutable and safe for concurrent use; the zero
// Metadata is empty. NewMetadata checks a caller's entries, DecodeMetadata
// the stored form, and nothing else makes one, so holders never check it
// again.
type Metadata struct{ m map[string]string }

// NewMetadata validates a caller's entries: at most MaxMetadataEntries,
// keys of 1..MaxMetadataKeyLen bytes and values of at most
// MaxMetadataValueLen bytes, both UTF-8, no reserved key. It returns a
// *ValidationError naming the first problem.
func NewMetadata(entries map[string]string) (Metadata, error) {
	if len(entries) > MaxMetadataEntries {
		return Metadata{}, invalid("metadata", "at most %d entries, got %d", MaxMetadataEntries, len(entries))
	}
	for _, k := range reservedKeys {
		if _, ok := entries[k]; ok {
			return Metadata{}, invalid("metadata", "key %q is reserved: the ledger sets it", k)
		}
	}
	return checked(entries)
}

// DecodeMetadata validates metadata read back from a store or the wire:
// the caller's limits plus the reserved keys. It returns a
// *ValidationError.
func DecodeMetadata(entries map[string]string) (Metadata, error) {
	if len(entries) > MaxMetadataEntries+len(reservedKeys) {
		return Metadata{}, invalid("metadata", "at most %d entries, got %d", MaxMetadataEntries+len(reservedKeys), len(entries))
	}
	return checked(entries)
}

// MustMetadata is DecodeMetadata that panics, for tests and constants.
func MustMetadata(entries map[string]string) Metadata {
	m, err := DecodeMetadata(entries)
	if err != nil {
		panic(err)
	}
	return m
}

// checked checks each entry's form and copies the map, so the caller's map
// can change afterwards.
func checked(entries map[string]string) (Metadata, error) {
	if err := checkEntries(entries); err != nil {
		return Metadata{}, err
	}
	if len(entries) == 0 {
		return Metadata{}, nil
	}
	return Metadata{m: maps.Clone(entries)}, nil
}

// checkEntries checks each entry's form: what a store writes must decode
// back (DecodeMetadata), or every read of the log past it fails.
func checkEntries(entries map[string]string) error {
	for k, v := range entries {
		if err := checkEntry(k, v); err != nil {
			return err
		}
	}
	return nil
}

// checkEntry checks one entry's form.
func checkEntry(k, v string) error {
	switch {
	case k == "" || len(k) > MaxMetadataKeyLen || !utf8.ValidString(k):
		return invalid("metadata", "key %q must be 1..%d bytes of UTF-8", clip(k), MaxMetadataKeyLen)
	case len(v) > MaxMetadataValueLen || !utf8.ValidString(v):
		return invalid("metadata", "value of %q must be at most %d bytes of UTF-8", clip(k), MaxMetadataValueLen)
	}
	return nil
}

// Len returns the number of entries.
func (m Metadata) Len() int { return len(m.m) }

// Get returns the value of key k and whether it is set.
func (m Metadata) Get(k string) (string, bool) {
	v, ok := m.m[k]
	return v, ok
}

// All yields the entries in key order.
func (m Metadata) All() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for _, k := range slices.Sorted(maps.Keys(m.m)) {
			if !yield(k, m.m[k]) {
				return
			}
		}
	}
}

// Equal reports whether m and o hold the same entries.
func (m Metadata) Equal(o Metadata) bool { return maps.Equal(m.m, o.m) }

// with returns a copy of m with the non-empty server entries added.
func (m Metadata) with(entries ...[2]string) Metadata {
	out := Metadata{m: maps.Clone(m.m)}
	for _, e := range entries {
		if e[1] == "" {
			continue
		}
		if out.m == nil {
			out.m = make(map[string]string, len(entries))
		}
		out.m[e[0]] = e[1]
	}
	return out
}

// MarshalJSON encodes the entries as one JSON object, keys in order; the
// empty Metadata is null.
func (m Metadata) MarshalJSON() ([]byte, error) {
	if len(m.m) == 0 {
		return []byte("null"), nil
	}
	return json.Marshal(m.m)
}

// UnmarshalJSON decodes a JSON object of strings (or null) and validates it
// as DecodeMetadata does.
func (m *Metadata) UnmarshalJSON(b []byte) error {
	var entries map[string]string
	if err := json.Unmarshal(b, &entries); err != nil {
		return err
	}
	d, err := DecodeMetadata(entries)
	if err != nil {
		return err
	}
	*m = d
	return nil
}
