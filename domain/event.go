package domain

import (
	"time"

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

// NewEventID returns a new time-ordered UUIDv7 event id.
func NewEventID() uuid.UUID {
	return uuid.Must(uuid.NewV7())
}
