package sqlite

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/sqlite/sqlitetest"
	"github.com/interactionledger/ledger/adapters/storetest"
	"github.com/interactionledger/ledger/domain"
	"github.com/mattn/go-sqlite3"
)

// appendToggles appends n random toggles over streams streams and kinds
// kinds (each a real toggle of its stream's state) and returns the log.
func appendToggles(t *testing.T, s *EventStore, n, streams int, kinds []string) []domain.Event {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	versions := map[domain.StreamID]int64{}
	states := map[domain.StreamID]domain.State{}
	for range n {
		k := rng.IntN(streams)
		st := storetest.MustStream(t, "u"+strconv.Itoa(k%7), "article/a"+strconv.Itoa(k))
		kind := storetest.MustKind(t, kinds[rng.IntN(len(kinds))])
		typ := domain.EventAdded
		if states[st].Active(kind) {
			typ = domain.EventCancelled
		}
		v := versions[st]
		e := domain.Event{ID: domain.NewEventID(), Type: typ, Kind: kind, User: st.User, Target: st.Target,
			StreamVersion: v + 1, OccurredAt: time.UnixMilli(int64(1_700_000_000_000 + rng.IntN(1e9)))}
		versions[st], states[st] = v+1, domain.Evolve(states[st], e)
		storetest.MustAppend(t, s, domain.AppendRequest{Stream: st, ExpectedVersion: v, Events: []domain.Event{e}, State: states[st]})
	}
	return storetest.MustReadAll(t, s, domain.EventFilter{})
}

// TestReadLatestPositions checks ReadLatest against the log at several
// positions, with five kinds.
func TestReadLatestPositions(t *testing.T) {
	s := MustOpen(t, Config{Path: filepath.Join(t.TempDir(), "ledger.db")})
	all := appendToggles(t, s, 600, 40, []string{"like", "collect", "share", "follow", "flag"})
	last := all[len(all)-1].Position
	for _, upTo := range []int64{0, 1, last / 3, last - 1, last, last + 10} {
		got, err := domain.AppendEvents(nil, s.ReadLatest(t.Context(), upTo))
		if err != nil {
			t.Fatalf("ReadLatest(%d): %v", upTo, err)
		}
		storetest.CheckToggles(t, got, storetest.LatestToggles(all, upTo))
	}
}

// TestReadLatestBadRows: a row the ledger does not write fails the read
// with an error naming it, never a wrong toggle.
func TestReadLatestBadRows(t *testing.T) {
	for _, c := range []struct{ name, sql, want string }{
		{"type", `UPDATE events SET type = 'interaction.bogus' WHERE position = 3`, "event 3: stored type"},
		{"kind", `UPDATE events SET kind = 'Not A Kind' WHERE position = 4`, "event 4: stored kind"},
		{"user", `UPDATE streams SET user_id = 'bad user' WHERE stream_key = 2`, "stream 2: stored user"},
		{"target", `UPDATE streams SET target_id = '' WHERE stream_key = 2`, "stream 2: stored target"},
		{"stream", `DELETE FROM streams WHERE stream_key = 3`, "stream 3 has no row"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ledger.db")
			s := MustOpen(t, Config{Path: path})
			appendToggles(t, s, 40, 5, []string{"like", "collect"})
			if _, err := sqlitetest.DB(t, path).Exec(c.sql); err != nil {
				t.Fatal(err)
			}
			_, err := domain.AppendEvents(nil, s.ReadLatest(t.Context(), 1000))
			if err == nil || !strings.Contains(err.Error(), c.want) || errors.Is(err, context.Canceled) {
				t.Fatalf("ReadLatest: %v, want an error with %q (and not a cancellation)", err, c.want)
			}
		})
	}
}

// TestReadLatestCancel: a cancelled read ends with the context's error.
func TestReadLatestCancel(t *testing.T) {
	s := MustOpen(t, Config{Path: filepath.Join(t.TempDir(), "ledger.db")})
	appendToggles(t, s, 40, 5, []string{"like"})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := domain.AppendEvents(nil, s.ReadLatest(ctx, 1000))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadLatest after cancel: %v, want context.Canceled", err)
	}
}

// Translating an error twice (a read that translates, then its caller)
// does not repeat its message: "sqlite: database file is corrupt: sqlite:
// database file is corrupt: ..." was seen.
func TestTranslateOnce(t *testing.T) {
	raw := sqlite3.Error{Code: sqlite3.ErrCorrupt}
	once := translate(raw)
	if twice := translate(fmt.Errorf("read: %w", once)); strings.Count(twice.Error(), "database file is corrupt") != 1 {
		t.Fatalf("translated twice: %v", twice)
	}
	if !errors.Is(once, domain.ErrUnavailable) {
		t.Fatalf("%v does not match ErrUnavailable", once)
	}
}
