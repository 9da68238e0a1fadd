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

// Toggle is an event reduced to what the state of its interaction depends
// on: which interaction, whether the event turned its kind on or off, its
// position and when it happened. Projections fold toggles; a LatestReader
// hands a rebuild only the last toggle of each interaction.
type Toggle struct {
	Stream     StreamID
	Kind       Kind
	On         bool
	Position   int64
	OccurredAt time.Time
}

// Toggle returns the event reduced to its toggle.
func (e Event) Toggle() Toggle {
	return Toggle{Stream: e.Stream(), Kind: e.Kind, On: e.On(), Position: e.Position, OccurredAt: e.OccurredAt}
}

// NewEventID returns a new time-ordered UUIDv7 event id.
func NewEventID() uuid.UUID {
	return uuid.Must(uuid.NewV7())
}
