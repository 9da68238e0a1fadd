package domain_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/interactionledger/ledger/domain"
)

func TestDecideEvolve(t *testing.T) {
	like, collect := mustKind(t, "like"), mustKind(t, "collect")
	stream := domain.StreamID{User: mustUser(t, "u1"), Target: mustTarget(t, "article/a1")}
	var s domain.State
	var v int64
	step := func(k domain.Kind, on bool, wantEvent domain.EventType) {
		t.Helper()
		events := domain.Decide(s, v, domain.Command{Stream: stream, Kind: k, On: on})
		if wantEvent == "" {
			if len(events) != 0 {
				t.Fatalf("%s on=%t in state %q: got %d events, want none", k, on, s, len(events))
			}
			return
		}
		if len(events) != 1 || events[0].Type != wantEvent || events[0].StreamVersion != v+1 ||
			events[0].Kind != k || events[0].ID == uuid.Nil || events[0].ID.Version() != 7 {
			t.Fatalf("%s on=%t: got %+v, want one %s at version %d", k, on, events, wantEvent, v+1)
		}
		s = domain.Evolve(s, events[0])
		v = events[0].StreamVersion
	}
	step(like, false, "")
	step(like, true, domain.EventAdded)
	step(like, true, "")
	step(collect, true, domain.EventAdded)
	if got := s.String(); got != "collect,like" {
		t.Fatalf("state = %q, want collect,like", got)
	}
	step(like, false, domain.EventCancelled)
	step(like, false, "")
	if s.Active(like) || !s.Active(collect) || v != 3 {
		t.Fatalf("state %q version %d", s, v)
	}
}

func TestDecideUsesGivenEventID(t *testing.T) {
	id := uuid.MustParse("0193a1c2-0000-7000-8000-000000000001")
	events := domain.Decide(domain.State{}, 0, domain.Command{
		Stream: domain.StreamID{User: mustUser(t, "u"), Target: mustTarget(t, "a/b")},
		Kind:   mustKind(t, "like"), On: true, EventID: id,
	})
	if len(events) != 1 || events[0].ID != id {
		t.Fatalf("got %+v, want the given id", events)
	}
}

func TestStateRoundTrip(t *testing.T) {
	for _, in := range []string{"", "like", "collect,like", "a,b,c"} {
		s, err := domain.ParseState(in)
		if err != nil || s.String() != in {
			t.Errorf("ParseState(%q) = %q, %v", in, s, err)
		}
	}
	if s, err := domain.ParseState("like,collect"); err != nil || s.String() != "collect,like" {
		t.Errorf("unsorted input must be normalised, got %q %v", s, err)
	}
	if _, err := domain.ParseState("like,,x"); err == nil {
		t.Error("want an error for an empty kind")
	}
	a, _ := domain.ParseState("like")
	b := a.With(mustKind(t, "collect"), true)
	if a.String() != "like" || b.String() != "collect,like" {
		t.Errorf("With must not change its receiver: %q %q", a, b)
	}
}
