package projections_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

var (
	kinds = domain.MustKindSet("like", "collect")
	like  = mustKind("like")
	coll  = mustKind("collect")
	t0    = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
)

func mustKind(s string) domain.Kind {
	k, err := domain.ParseKind(s)
	if err != nil {
		panic(err)
	}
	return k
}

func mustTarget(tb testing.TB, s string) domain.Target {
	tb.Helper()
	t, err := domain.ParseTarget(s)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

func mustUser(tb testing.TB, s string) domain.UserID {
	tb.Helper()
	u, err := domain.NewUserID(s)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

// MustOpen opens a views file in a temp dir with no store (empty log).
func MustOpen(tb testing.TB, path string) *projections.Set {
	tb.Helper()
	if path == "" {
		path = filepath.Join(tb.TempDir(), "ledger.db.views")
	}
	s, err := projections.Open(context.Background(), projections.Config{Path: path, Kinds: kinds}, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// eventLog builds consistent events by hand: each toggle appends one event
// at the next position.
type eventLog struct {
	tb     testing.TB
	events []domain.Event
	ver    map[string]int64
}

func newEventLog(tb testing.TB) *eventLog { return &eventLog{tb: tb, ver: map[string]int64{}} }

func (l *eventLog) add(user, target string, k domain.Kind, on bool) domain.Event {
	typ := domain.EventCancelled
	if on {
		typ = domain.EventAdded
	}
	u, t := mustUser(l.tb, user), mustTarget(l.tb, target)
	stream := domain.StreamID{User: u, Target: t}.String()
	l.ver[stream]++
	pos := int64(len(l.events) + 1)
	e := domain.Event{
		ID: domain.NewEventID(), Type: typ, Kind: k, User: u, Target: t,
		StreamVersion: l.ver[stream], Position: pos,
		OccurredAt: t0.Add(time.Duration(pos) * time.Second), RecordedAt: t0.Add(time.Duration(pos) * time.Second),
	}
	l.events = append(l.events, e)
	return e
}

func applyAll(tb testing.TB, s *projections.Set, events []domain.Event) {
	tb.Helper()
	for _, n := range s.Names() {
		if err := s.Apply(context.Background(), n, events); err != nil {
			tb.Fatalf("apply %s: %v", n, err)
		}
	}
}
