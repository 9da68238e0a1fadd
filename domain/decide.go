package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// State is the decided state of one stream: which kinds are on. The zero
// State has every kind off. State is a value; With returns a new one.
type State struct {
	on []string // sorted kind names
}

// Active reports whether kind k is on.
func (s State) Active(k Kind) bool {
	_, found := slices.BinarySearch(s.on, k.name)
	return found
}

// With returns a copy of s with kind k turned on or off.
func (s State) With(k Kind, on bool) State {
	i, found := slices.BinarySearch(s.on, k.name)
	if found == on {
		return s
	}
	next := slices.Clone(s.on)
	if on {
		next = slices.Insert(next, i, k.name)
	} else {
		next = slices.Delete(next, i, i+1)
	}
	return State{on: next}
}

// ActiveKinds returns the names of the kinds that are on, sorted.
func (s State) ActiveKinds() []string { return slices.Clone(s.on) }

// String encodes the state as sorted, comma-separated kind names; the
// empty string means nothing is on. Stores keep this form in snapshots.
func (s State) String() string { return strings.Join(s.on, ",") }

// ParseState decodes State.String's form. It returns a *ValidationError for
// a malformed kind name.
func ParseState(s string) (State, error) {
	if s == "" {
		return State{}, nil
	}
	var st State
	for name := range strings.SplitSeq(s, ",") {
		k, err := ParseKind(name)
		if err != nil {
			return State{}, err
		}
		st = st.With(k, true)
	}
	return st, nil
}

// ParseStoredState decodes a state that a store read back from its log
// (State.String's form). A state that does not decode is the log's fault,
// not the request's: the error wraps ErrUnavailable and names the stored
// state, but not ParseState's *ValidationError, which would match
// ErrInvalidInput (answered 400, as if the client had sent it).
func ParseStoredState(s string) (State, error) {
	st, err := ParseState(s)
	if err != nil {
		return State{}, fmt.Errorf("stored state %q: %s: %w", s, err, ErrUnavailable)
	}
	return st, nil
}

// Command asks to turn one kind on or off for one stream.
type Command struct {
	Stream     StreamID
	Kind       Kind
	On         bool
	Metadata   Metadata
	OccurredAt time.Time
	// EventID, when set, is used instead of a fresh UUIDv7 (imports derive
	// ids from their source rows so that a re-run appends nothing).
	EventID uuid.UUID
}

// Decide returns the events that command c produces against state s at
// stream version v: none when the kind is already in the asked state.
func Decide(s State, v int64, c Command) []Event {
	if s.Active(c.Kind) == c.On {
		return nil
	}
	typ := EventCancelled
	if c.On {
		typ = EventAdded
	}
	id := c.EventID
	if id == uuid.Nil {
		id = NewEventID()
	}
	return []Event{{
		ID:            id,
		Type:          typ,
		Kind:          c.Kind,
		User:          c.Stream.User,
		Target:        c.Stream.Target,
		StreamVersion: v + 1,
		OccurredAt:    c.OccurredAt,
		Metadata:      c.Metadata,
	}}
}

// Decided returns the events that c produces against the stream at snap
// (Decide) and the outcome they leave: the state and version after them,
// Active for c's kind, and Position at the stream's last event, which a
// store moves to the appended event's position once it has one.
func Decided(snap Snapshot, c Command) ([]Event, Outcome) {
	events := Decide(snap.State, snap.Version, c)
	out := Outcome{Changed: len(events) > 0, State: snap.State,
		StreamVersion: snap.Version, Position: snap.LastPosition}
	for _, e := range events {
		out.State = Evolve(out.State, e)
		out.StreamVersion = e.StreamVersion
	}
	out.Active = out.State.Active(c.Kind)
	return events, out
}

// Evolve applies event e to state s.
func Evolve(s State, e Event) State {
	return s.With(e.Kind, e.On())
}
