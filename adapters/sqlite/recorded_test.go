package sqlite

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/storetest"
	"github.com/interactionledger/ledger/domain"
)

// steppedClock is a clock that tests move by hand (an NTP step, another
// machine's clock).
type steppedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *steppedClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *steppedClock) step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestRecordedAtFollowsPositions: an event's recorded_at is never before
// the one of the event at the position before it, whatever the clock of
// the process that appends it does. asof --time cuts the log at the last
// event recorded at or before a time, which is a moment of the log only
// when recorded times follow positions; a clock stepped back by NTP, or
// a second process on the file whose clock is behind, recorded times
// back in the past.
func TestRecordedAtFollowsPositions(t *testing.T) {
	like := func(s *EventStore, user string) {
		t.Helper()
		storetest.MustDecide(t, s, domain.DecideRequest{
			Command: storetest.Command(t, storetest.MustStream(t, user, "article/a1"), "like", true)})
	}
	t.Run("ClockSteppedBack", func(t *testing.T) {
		clock := &steppedClock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
		s := MustOpen(t, Config{Path: filepath.Join(t.TempDir(), "ledger.db"), now: clock.now})
		like(s, "u1")
		clock.step(-time.Hour)
		like(s, "u2")
		clock.step(2 * time.Hour)
		like(s, "u3")
		checkRecordedOrder(t, storetest.MustReadAll(t, s, domain.EventFilter{}), 3)
	})
	t.Run("AnotherProcessBehind", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		ahead := &steppedClock{t: time.Now().Add(5 * time.Minute)}
		a := MustOpen(t, Config{Path: path, now: ahead.now})
		b := MustOpen(t, Config{Path: path})
		like(a, "u1")
		like(b, "u2")
		like(a, "u3")
		checkRecordedOrder(t, storetest.MustReadAll(t, b, domain.EventFilter{}), 3)
	})
}

// checkRecordedOrder fails t unless events are n, each recorded no
// earlier than the one before it.
func checkRecordedOrder(t *testing.T, events []domain.Event, n int) {
	t.Helper()
	if len(events) != n {
		t.Fatalf("%d events, want %d", len(events), n)
	}
	for i := 1; i < len(events); i++ {
		if prev, e := events[i-1], events[i]; e.RecordedAt.Before(prev.RecordedAt) {
			t.Errorf("position %d recorded at %s, before position %d's %s",
				e.Position, e.RecordedAt.Format(time.RFC3339Nano), prev.Position, prev.RecordedAt.Format(time.RFC3339Nano))
		}
	}
}

// TestCommitStatsSayWhenTheClockIsBehind: a commit whose clock is behind
// the log's last recorded_at (recorded at it instead) says by how much, so
// that the server can tell its operator that an event of a clock once far
// ahead pins every later event's time.
func TestCommitStatsSayWhenTheClockIsBehind(t *testing.T) {
	start := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	clock := &steppedClock{t: start}
	var mu sync.Mutex
	var last CommitStats
	s := MustOpen(t, Config{Path: filepath.Join(t.TempDir(), "ledger.db"), now: clock.now, OnCommit: func(st CommitStats) {
		mu.Lock()
		defer mu.Unlock()
		last = st
	}})
	stats := func() CommitStats {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
	like := func(user string) {
		storetest.MustDecide(t, s, domain.DecideRequest{
			Command: storetest.Command(t, storetest.MustStream(t, user, "article/a1"), "like", true)})
	}
	like("u1")
	if st := stats(); st.ClockBehind != 0 || !st.RecordedAt.Equal(start) {
		t.Fatalf("a commit on time: behind %s, recorded at %s; want 0, %s", st.ClockBehind, st.RecordedAt, start)
	}
	clock.step(-time.Hour)
	like("u2")
	if st := stats(); st.ClockBehind != time.Hour || !st.RecordedAt.Equal(start) {
		t.Fatalf("a clock an hour behind: behind %s, recorded at %s; want 1h, %s", st.ClockBehind, st.RecordedAt, start)
	}
	clock.step(2 * time.Hour)
	like("u3")
	if st := stats(); st.ClockBehind != 0 {
		t.Fatalf("a clock past the log's time again: behind %s, want 0", st.ClockBehind)
	}
}
