package sqlite

import (
	"errors"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/sqlite/sqlitetest"
	"github.com/interactionledger/ledger/adapters/storetest"
	"github.com/interactionledger/ledger/domain"
)

// toggles builds an append to user's like of target: ons after version
// expected, each event with metadata when withMeta.
func toggles(t *testing.T, user, target string, expected int64, withMeta bool, ons ...bool) domain.AppendRequest {
	t.Helper()
	st := storetest.MustStream(t, user, target)
	req := domain.AppendRequest{Stream: st, ExpectedVersion: expected}
	for i, on := range ons {
		typ := domain.EventCancelled
		if on {
			typ = domain.EventAdded
		}
		e := domain.Event{ID: domain.NewEventID(), Type: typ, Kind: storetest.MustKind(t, "like"),
			User: st.User, Target: st.Target, StreamVersion: expected + int64(i) + 1,
			OccurredAt: time.Now().In(time.FixedZone("x", 3600))}
		if withMeta {
			md, err := domain.NewMetadata(map[string]string{"source": "feed", "n": strconv.Itoa(i)})
			if err != nil {
				t.Fatal(err)
			}
			e.Metadata = md
		}
		req.Events = append(req.Events, e)
		req.State = domain.Evolve(req.State, e)
	}
	return req
}

// TestRecentMatchesLog checks that AppendRecent answers exactly what the
// log's read does (every field, compared deeply) after group commits with
// failed appends, appends of several events, metadata, and lone appends;
// and that it holds nothing after the log's end.
func TestRecentMatchesLog(t *testing.T) {
	s := MustOpen(t, Config{Path: filepath.Join(t.TempDir(), "ledger.db")})
	if _, ok := s.AppendRecent(nil, 0, 1); ok { // from now on it keeps them
		t.Fatal("an empty store holds events")
	}
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			req := toggles(t, "u"+strconv.Itoa(i), "article/a1", 0, i%3 == 0, true)
			if i%4 == 1 {
				req = toggles(t, "u"+strconv.Itoa(i), "article/a2", 0, i%3 == 0, true, false, true)
			}
			if i%8 == 5 {
				req = toggles(t, "u"+strconv.Itoa(i), "article/a3", 7, false, true) // a version conflict
			}
			if _, err := s.Append(t.Context(), req); err != nil && !errors.Is(err, domain.ErrVersionConflict) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range 5 {
		storetest.MustAppend(t, s, toggles(t, "lone", "article/l"+strconv.Itoa(i), 0, i%2 == 0, true))
	}
	last, err := s.LastPosition(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for after := int64(0); after < last; after++ {
		got, ok := s.AppendRecent(nil, after, 7)
		if !ok {
			t.Fatalf("after %d of %d: not held", after, last)
		}
		var want []domain.Event
		for e, err := range s.ReadEvents(t.Context(), domain.EventFilter{After: after, Limit: 7}) {
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, e)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("after %d:\n got  %+v\n want %+v", after, got, want)
		}
	}
	if got, ok := s.AppendRecent(nil, last, 7); !ok || len(got) != 0 {
		t.Fatalf("after the end: %v, %v; want no events, held", got, ok)
	}
	if got, ok := s.AppendRecent(nil, last+1, 7); ok {
		t.Fatalf("after a position not yet written: %v, want no answer", got)
	}
}

// TestRecentAfterAnotherWriter checks that a commit of another connection
// between two of the store's own is never skipped over: the store then
// holds only what follows it.
func TestRecentAfterAnotherWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	a := MustOpen(t, Config{Path: path})
	b := MustOpen(t, Config{Path: path})
	a.AppendRecent(nil, 0, 1)
	storetest.MustAppend(t, a, likeReq(t, a, "article/a1"))
	storetest.MustAppend(t, b, likeReq(t, b, "article/a2"))
	storetest.MustAppend(t, a, likeReq(t, a, "article/a3"))
	for _, after := range []int64{0, 1} {
		if got, ok := a.AppendRecent(nil, after, 10); ok {
			t.Fatalf("after %d: %d events held across another writer's commit", after, len(got))
		}
	}
	got, ok := a.AppendRecent(nil, 2, 10)
	if !ok || len(got) != 1 || got[0].Position != 3 || got[0].Target.ID() != "a3" {
		t.Fatalf("after 2: %+v, %v; want the event at 3", got, ok)
	}
}

// TestRecentBounded checks that the store keeps at most recentCap events,
// the newest, still at consecutive positions.
func TestRecentBounded(t *testing.T) {
	var r recent
	next := int64(1)
	for range 3 * recentCap / 100 {
		batch := make([]domain.Event, 100)
		for i := range batch {
			batch[i].Position = next
			next++
		}
		r.add(batch)
		if len(r.events) > recentCap {
			t.Fatalf("%d events held, want at most %d", len(r.events), recentCap)
		}
	}
	for i, e := range r.events {
		if want := next - int64(len(r.events)) + int64(i); e.Position != want {
			t.Fatalf("held event %d at %d, want %d", i, e.Position, want)
		}
	}
	if got, ok := r.appendAfter(nil, next-2, 5); !ok || len(got) != 1 || got[0].Position != next-1 {
		t.Fatalf("the newest: %+v, %v", got, ok)
	}
}

// TestRecentOnlyWhenAsked checks that a store nobody has asked for its
// recent events keeps none, and keeps them once asked.
func TestRecentOnlyWhenAsked(t *testing.T) {
	s := MustOpen(t, Config{Path: filepath.Join(t.TempDir(), "ledger.db")})
	storetest.MustAppend(t, s, likeReq(t, s, "article/a1"))
	if n := len(s.recent.events); n != 0 {
		t.Fatalf("%d events kept before anyone asked", n)
	}
	if _, ok := s.AppendRecent(nil, 0, 1); ok {
		t.Fatal("held an event kept before anyone asked")
	}
	storetest.MustAppend(t, s, likeReq(t, s, "article/a2"))
	if got, ok := s.AppendRecent(nil, 1, 5); !ok || len(got) != 1 || got[0].Position != 2 {
		t.Fatalf("after asking: %+v, %v; want the event at 2", got, ok)
	}
}

// TestRecentForgetsALogRestoredUnderIt: an older copy of the log restored
// into the file under a running store (SQLite's backup API, as the sqlite3
// shell's .restore does: the same file, so its path still names it) and
// grown again by another writer to exactly the store's last position kept
// the store's memory of the positions it had written, and its next commit
// was added to it: a tail then got the replaced event at that position
// from memory, and a projection's check that the log still holds the
// event it applied there passed. A commit after another connection's
// forgets what the store held.
func TestRecentForgetsALogRestoredUnderIt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ledger.db")
	s := MustOpen(t, Config{Path: path})
	s.AppendRecent(nil, 0, 1)
	storetest.MustAppend(t, s, likeReq(t, s, "article/a1"))
	storetest.MustAppend(t, s, likeReq(t, s, "article/a2"))
	copyPath := filepath.Join(dir, "copy.db")
	if _, err := sqlitetest.DB(t, path).Exec(`VACUUM INTO ?`, copyPath); err != nil {
		t.Fatal(err)
	}
	storetest.MustAppend(t, s, likeReq(t, s, "article/a3"))
	sqlitetest.Copy(t, copyPath, path)
	other := MustOpen(t, Config{Path: path})
	storetest.MustAppend(t, other, likeReq(t, other, "article/b3")) // position 3 again
	storetest.MustAppend(t, s, likeReq(t, s, "article/a4"))
	var want []domain.Event
	for e, err := range s.ReadEvents(t.Context(), domain.EventFilter{After: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, e)
	}
	if len(want) != 2 || want[0].Target.ID() != "b3" {
		t.Fatalf("the restored log after 2: %+v", want)
	}
	if got, ok := s.AppendRecent(nil, 2, 10); ok && !reflect.DeepEqual(got, want) {
		t.Fatalf("held after 2:\n got  %+v\n want the log's %+v", got, want)
	}
}
