package eventcodec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/interactionledger/ledger/domain"
)

// TargetJSON is a target as it appears on the wire.
type TargetJSON struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// EventJSON is an event as it appears on the wire (docs/api.md, "An event").
type EventJSON struct {
	Position      int64           `json:"position"`
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	Kind          string          `json:"kind"`
	User          string          `json:"user"`
	Target        TargetJSON      `json:"target"`
	StreamVersion int64           `json:"stream_version"`
	OccurredAt    time.Time       `json:"occurred_at"`
	RecordedAt    time.Time       `json:"recorded_at"`
	Metadata      domain.Metadata `json:"metadata,omitzero"`
}

// TimeFormat is how times are written: RFC 3339 in UTC with milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// ToJSON converts an event to its wire form.
func ToJSON(e domain.Event) EventJSON {
	return EventJSON{
		Position:      e.Position,
		ID:            e.ID.String(),
		Type:          string(e.Type),
		Kind:          e.Kind.String(),
		User:          e.User.String(),
		Target:        TargetJSON{Type: e.Target.Type(), ID: e.Target.ID()},
		StreamVersion: e.StreamVersion,
		OccurredAt:    e.OccurredAt.UTC(),
		RecordedAt:    e.RecordedAt.UTC(),
		Metadata:      e.Metadata,
	}
}

// MarshalEvent returns the event's JSON object (no trailing newline).
func MarshalEvent(e domain.Event) []byte {
	// The wire struct has only strings, numbers, times and a string map, so
	// encoding cannot fail.
	b, _ := json.Marshal(ToJSON(e))
	return b
}

// MarshalJSON writes times with millisecond precision in UTC.
func (j EventJSON) MarshalJSON() ([]byte, error) {
	type plain EventJSON
	return json.Marshal(struct {
		plain
		OccurredAt string `json:"occurred_at"`
		RecordedAt string `json:"recorded_at"`
	}{plain(j), j.OccurredAt.UTC().Format(TimeFormat), j.RecordedAt.UTC().Format(TimeFormat)})
}

// UnmarshalEvent decodes and validates one event object. Unknown fields
// are rejected. It returns an error wrapping domain.ErrInvalidInput.
func UnmarshalEvent(b []byte) (domain.Event, error) {
	var j EventJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return domain.Event{}, fmt.Errorf("decode event: %v: %w", err, domain.ErrInvalidInput)
	}
	if dec.More() {
		return domain.Event{}, fmt.Errorf("decode event: trailing data: %w", domain.ErrInvalidInput)
	}
	return FromJSON(j)
}

// FromJSON validates a wire event and converts it: its times must be ones
// the log can hold (domain.ValidateEventTime), which a missing one is
// not. It returns an error wrapping domain.ErrInvalidInput.
func FromJSON(j EventJSON) (domain.Event, error) {
	id, err := uuid.Parse(j.ID)
	if err != nil {
		return domain.Event{}, fmt.Errorf("event id %q: %w", j.ID, domain.ErrInvalidInput)
	}
	typ, err := domain.ParseEventType(j.Type)
	if err != nil {
		return domain.Event{}, err
	}
	kind, err := domain.ParseKind(j.Kind)
	if err != nil {
		return domain.Event{}, err
	}
	user, err := domain.NewUserID(j.User)
	if err != nil {
		return domain.Event{}, err
	}
	target, err := domain.NewTarget(j.Target.Type, j.Target.ID)
	if err != nil {
		return domain.Event{}, err
	}
	if j.Position < 0 || j.StreamVersion < 1 {
		return domain.Event{}, fmt.Errorf("event position %d, stream_version %d: %w",
			j.Position, j.StreamVersion, domain.ErrInvalidInput)
	}
	// A time the log cannot hold is none of its events', and a missing
	// one decodes as year 1.
	if err := domain.ValidateEventTime("occurred_at", j.OccurredAt); err != nil {
		return domain.Event{}, err
	}
	if err := domain.ValidateEventTime("recorded_at", j.RecordedAt); err != nil {
		return domain.Event{}, err
	}
	return domain.Event{
		ID: id, Type: typ, Kind: kind, User: user, Target: target,
		StreamVersion: j.StreamVersion, Position: j.Position,
		OccurredAt: j.OccurredAt.UTC(), RecordedAt: j.RecordedAt.UTC(),
		Metadata: j.Metadata,
	}, nil
}
