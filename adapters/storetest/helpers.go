package storetest

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/interactionledger/ledger/domain"
)

// MustUser returns the user id or fails tb.
func MustUser(tb testing.TB, id string) domain.UserID {
	tb.Helper()
	u, err := domain.NewUserID(id)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

// MustTarget parses "type/id" or fails tb.
func MustTarget(tb testing.TB, s string) domain.Target {
	tb.Helper()
	t, err := domain.ParseTarget(s)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// MustKind parses a kind name or fails tb.
func MustKind(tb testing.TB, name string) domain.Kind {
	tb.Helper()
	k, err := domain.ParseKind(name)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// MustStream returns the stream of user and "type/id" or fails tb.
func MustStream(tb testing.TB, user, target string) domain.StreamID {
	tb.Helper()
	return domain.StreamID{User: MustUser(tb, user), Target: MustTarget(tb, target)}
}

// clock hands out distinct, increasing occurrence times with nanosecond
// parts, so that round trips check full precision.
var clock atomic.Int64

func nextTime() time.Time {
	base := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	return base.Add(time.Duration(clock.Add(1)) * 1001 * time.Microsecond)
}

// event builds the version-th event of stream turning kind on or off.
func event(tb testing.TB, stream domain.StreamID, version int64, kind string, on bool, md domain.Metadata) domain.Event {
	tb.Helper()
	typ := domain.EventCancelled
	if on {
		typ = domain.EventAdded
	}
	return domain.Event{
		ID: domain.NewEventID(), Type: typ, Kind: MustKind(tb, kind),
		User: stream.User, Target: stream.Target, StreamVersion: version,
		OccurredAt: nextTime(), Metadata: md,
	}
}

// request builds an append of events toggling kind, starting after version
// expected, with the matching resulting state.
func request(tb testing.TB, stream domain.StreamID, expected int64, kind string, ons ...bool) domain.AppendRequest {
	tb.Helper()
	req := domain.AppendRequest{Stream: stream, ExpectedVersion: expected}
	for i, on := range ons {
		e := event(tb, stream, expected+int64(i)+1, kind, on, domain.Metadata{})
		req.Events = append(req.Events, e)
		req.State = domain.Evolve(req.State, e)
	}
	return req
}

// MustAppend appends req or fails tb.
func MustAppend(tb testing.TB, s domain.EventStore, req domain.AppendRequest) domain.AppendResult {
	tb.Helper()
	res, err := s.Append(tb.Context(), req)
	if err != nil {
		tb.Fatalf("append %s at %d: %v", req.Stream, req.ExpectedVersion, err)
	}
	return res
}

// MustReadAll returns every event of s matching f, or fails tb.
func MustReadAll(tb testing.TB, s domain.EventStore, f domain.EventFilter) []domain.Event {
	tb.Helper()
	var out []domain.Event
	for e, err := range s.ReadEvents(tb.Context(), f) {
		if err != nil {
			tb.Fatalf("read events %+v: %v", f, err)
		}
		out = append(out, e)
	}
	return out
}

func positions(events []domain.Event) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.Position
	}
	return out
}

// committed returns req's events as the store should return them.
func committed(req domain.AppendRequest, res domain.AppendResult) []domain.Event {
	out := make([]domain.Event, len(req.Events))
	first := res.LastPosition - int64(len(req.Events)) + 1
	for i, e := range req.Events {
		e.Position = first + int64(i)
		e.RecordedAt = res.RecordedAt
		out[i] = e
	}
	return out
}

// checkEvents compares every field of got and want.
func checkEvents(tb testing.TB, got, want []domain.Event) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("got %d events %v, want %d %v", len(got), positions(got), len(want), positions(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		same := g.ID == w.ID && g.Type == w.Type && g.Kind == w.Kind && g.User == w.User &&
			g.Target == w.Target && g.StreamVersion == w.StreamVersion && g.Position == w.Position &&
			g.OccurredAt.Equal(w.OccurredAt) && g.RecordedAt.Equal(w.RecordedAt) &&
			g.Metadata.Equal(w.Metadata)
		if !same {
			tb.Errorf("event %d:\n got  %+v\n want %+v", i, g, w)
		}
	}
}

func name(prefix string, i int) string { return prefix + strconv.Itoa(i) }
