package domain

import (
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// EventType is the type of an interaction event.
type EventType string

// The two event types. Cancellation is an event of its own, never a flag.
const (
	EventAdded     EventType = "interaction.added"
	EventCancelled EventType = "interaction.cancelled"
)

// ParseEventType validates an event type name. It returns a *ValidationError.
func ParseEventType(s string) (EventType, error) {
	switch t := EventType(s); t {
	case EventAdded, EventCancelled:
		return t, nil
	}
	return "", invalid("type", "%q is not an event type", clip(s))
}

// Event is one appended fact: a user turned a kind on or off for a target.
// Events are plain data; Position and RecordedAt are set by the store when
// the event commits.
type Event struct {
	ID            uuid.UUID
	Type          EventType
	Kind          Kind
	User          UserID
	Target        Target
	StreamVersion int64
	Position      int64
	OccurredAt    time.Time
	RecordedAt    time.Time
	Metadata      Metadata
}

// Stream returns the stream the event belongs to.
func (e Event) Stream() StreamID { return StreamID{User: e.User, Target: e.Target} }

// On reports whether the event turns its kind on.
func (e Event) On() bool { return e.Type == EventAdded }

// Metadata is free string data stored with an event (request id, source,
// idempotency key, ...).
type Metadata map[string]string

// Metadata limits, from the HTTP contract.
const (
	MaxMetadataEntries  = 16
	MaxMetadataKeyLen   = 64
	MaxMetadataValueLen = 512
)

// ValidateMetadata checks the entry count and the keys and values: valid
// UTF-8, bounded length, a non-empty key. It returns a *ValidationError.
func ValidateMetadata(m Metadata) error {
	if len(m) > MaxMetadataEntries {
		return invalid("metadata", "at most %d entries, got %d", MaxMetadataEntries, len(m))
	}
	for k, v := range m {
		switch {
		case k == "" || len(k) > MaxMetadataKeyLen || !utf8.ValidString(k):
			return invalid("metadata", "key %q must be 1..%d bytes of UTF-8", clip(k), MaxMetadataKeyLen)
		case len(v) > MaxMetadataValueLen || !utf8.ValidString(v):
			return invalid("metadata", "value of %q must be at most %d bytes of UTF-8", clip(k), MaxMetadataValueLen)
		}
	}
	return nil
}

// NewEventID returns a new time-ordered UUIDv7 event id.
func NewEventID() uuid.UUID {
	return uuid.Must(uuid.NewV7())
}
