package domain_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/sqlite"
	"github.com/interactionledger/ledger/domain"
)

func mustLedger(tb testing.TB) (*domain.Ledger, *sqlite.EventStore) {
	tb.Helper()
	store := mustStore(tb)
	return domain.NewLedger(store, domain.MustKindSet("like", "collect"), domain.LedgerConfig{}, nil), store
}

func mustStore(tb testing.TB) *sqlite.EventStore {
	tb.Helper()
	store, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(tb.TempDir(), "l.db")}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	return store
}

// snapshotThenAppend hides the store's Decide: the Ledger then reads a
// snapshot and appends at its version, as over a store that cannot decide
// where it appends.
type snapshotThenAppend struct{ domain.CommandStore }

// snapshotCounter counts the Snapshot reads of a store that decides.
type snapshotCounter struct {
	*sqlite.EventStore
	reads atomic.Int64
}

func (c *snapshotCounter) Snapshot(ctx context.Context, st domain.StreamID) (domain.Snapshot, error) {
	c.reads.Add(1)
	return c.EventStore.Snapshot(ctx, st)
}

// forEachPath runs test with a Ledger over a store that decides where it
// appends (Decide) and over one that does not (Snapshot, then Append).
func forEachPath(t *testing.T, test func(t *testing.T, l *domain.Ledger, store *sqlite.EventStore)) {
	for _, path := range []string{"Decide", "SnapshotThenAppend"} {
		t.Run(path, func(t *testing.T) {
			store := mustStore(t)
			var cs domain.CommandStore = store
			if path == "SnapshotThenAppend" {
				cs = snapshotThenAppend{store}
			}
			test(t, domain.NewLedger(cs, domain.MustKindSet("like", "collect"), domain.LedgerConfig{}, nil), store)
		})
	}
}

// TestLedgerDecidesInTheStore: over a store that decides where it appends,
// a Set reads no snapshot, whether it changes the stream or not.
func TestLedgerDecidesInTheStore(t *testing.T) {
	store := &snapshotCounter{EventStore: mustStore(t)}
	l := domain.NewLedger(store, domain.MustKindSet("like", "collect"), domain.LedgerConfig{}, nil)
	for _, on := range []bool{true, true, false, false} {
		if _, err := l.Set(t.Context(), setReq(t, "u1", "article/a1", "like", on)); err != nil {
			t.Fatal(err)
		}
	}
	if n := store.reads.Load(); n != 0 {
		t.Fatalf("%d snapshot reads for 4 sets, want none", n)
	}
}

func setReq(t testing.TB, user, target, kind string, on bool) domain.SetRequest {
	return domain.SetRequest{User: mustUser(t, user), Target: mustTarget(t, target), Kind: mustKind(t, kind), On: on}
}

func TestLedgerSet(t *testing.T) {
	forEachPath(t, testLedgerSet)
}

func testLedgerSet(t *testing.T, l *domain.Ledger, _ *sqlite.EventStore) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		out, err := l.Set(ctx, setReq(t, "u1", "article/a1", "like", true))
		if err != nil || !out.Changed || !out.Active || out.StreamVersion != 1 || out.Position < 1 {
			t.Fatalf("like: %+v %v", out, err)
		}
		again, err := l.Set(ctx, setReq(t, "u1", "article/a1", "like", true))
		if err != nil || again.Changed || again.Position != out.Position || again.StreamVersion != 1 {
			t.Fatalf("like again must change nothing and report the stream's last position: %+v %v", again, err)
		}
		c, err := l.Set(ctx, setReq(t, "u1", "article/a1", "collect", true))
		if err != nil || c.State.String() != "collect,like" || c.Position <= out.Position {
			t.Fatalf("collect: %+v %v", c, err)
		}
		off, err := l.Set(ctx, setReq(t, "u1", "article/a1", "like", false))
		if err != nil || !off.Changed || off.Active || off.State.String() != "collect" || off.StreamVersion != 3 {
			t.Fatalf("unlike: %+v %v", off, err)
		}
	})
	t.Run("ErrUnknownKind", func(t *testing.T) {
		_, err := l.Set(ctx, setReq(t, "u1", "article/a1", "follow", true))
		if !errors.Is(err, domain.ErrUnknownKind) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ErrInvalidInput", func(t *testing.T) {
		r := setReq(t, "u1", "article/a1", "like", true)
		r.IdempotencyKey = "bad key"
		if _, err := l.Set(ctx, r); !errors.Is(err, domain.ErrInvalidInput) {
			t.Fatalf("err = %v", err)
		}
		if _, err := l.Set(ctx, domain.SetRequest{}); !errors.Is(err, domain.ErrInvalidInput) {
			t.Fatalf("zero request: err = %v", err)
		}
	})
}

func TestLedgerIdempotency(t *testing.T) {
	forEachPath(t, testLedgerIdempotency)
}

func testLedgerIdempotency(t *testing.T, l *domain.Ledger, store *sqlite.EventStore) {
	ctx := context.Background()
	r := setReq(t, "u1", "article/a1", "like", true)
	r.IdempotencyKey = "k-1"
	first, err := l.Set(ctx, r)
	if err != nil || !first.Changed {
		t.Fatal(first, err)
	}
	// Other writes in between, including one that undoes the first.
	if _, err := l.Set(ctx, setReq(t, "u1", "article/a1", "like", false)); err != nil {
		t.Fatal(err)
	}
	head, _ := store.LastPosition(ctx)
	t.Run("OK", func(t *testing.T) {
		r.RequestID = "another-request-id" // retries carry new request ids
		again, err := l.Set(ctx, r)
		if err != nil || !sameOutcome(again, first) {
			t.Fatalf("retry = %+v %v, want the first outcome %+v", again, err, first)
		}
		if now, _ := store.LastPosition(ctx); now != head {
			t.Fatalf("a retry appended: head %d -> %d", head, now)
		}
	})
	t.Run("ErrIdempotencyMismatch", func(t *testing.T) {
		other := setReq(t, "u1", "article/a1", "like", false)
		other.IdempotencyKey = "k-1"
		if _, err := l.Set(ctx, other); !errors.Is(err, domain.ErrIdempotencyMismatch) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("OtherUserSameKey", func(t *testing.T) {
		u2 := setReq(t, "u2", "article/a1", "like", true)
		u2.IdempotencyKey = "k-1"
		if out, err := l.Set(ctx, u2); err != nil || !out.Changed {
			t.Fatalf("keys are per user: %+v %v", out, err)
		}
	})
	t.Run("ConcurrentRetries", func(t *testing.T) {
		req := setReq(t, "u3", "article/a9", "collect", true)
		req.IdempotencyKey = "race"
		outs := make([]domain.Outcome, 16)
		var wg sync.WaitGroup
		for i := range outs {
			wg.Go(func() {
				var err error
				if outs[i], err = l.Set(ctx, req); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		for _, o := range outs {
			if !sameOutcome(o, outs[0]) || !o.Changed {
				t.Fatalf("outcomes differ: %+v vs %+v", o, outs[0])
			}
		}
		evs, _ := domain.AppendEvents(nil, store.ReadEvents(ctx, domain.EventFilter{User: req.User, TargetType: req.Target.Type(), TargetID: req.Target.ID()}))
		if len(evs) != 1 {
			t.Fatalf("%d events for one idempotent request", len(evs))
		}
	})
}

func TestLedgerIfMatch(t *testing.T) {
	forEachPath(t, testLedgerIfMatch)
}

func testLedgerIfMatch(t *testing.T, l *domain.Ledger, _ *sqlite.EventStore) {
	ctx := context.Background()
	r := setReq(t, "u1", "article/a1", "like", true)
	v := int64(0)
	r.ExpectedVersion = &v
	if out, err := l.Set(ctx, r); err != nil || out.StreamVersion != 1 {
		t.Fatalf("If-Match v0 on a new stream: %+v %v", out, err)
	}
	r.On = false
	if _, err := l.Set(ctx, r); !errors.Is(err, domain.ErrPreconditionFailed) {
		t.Fatalf("stale If-Match: err = %v", err)
	}
}

// TestLedgerConcurrentToggles: many goroutines toggle one pair; the final
// state is the last decided event's and the stream has no gaps.
func TestLedgerConcurrentToggles(t *testing.T) {
	forEachPath(t, testLedgerConcurrentToggles)
}

func testLedgerConcurrentToggles(t *testing.T, l *domain.Ledger, store *sqlite.EventStore) {
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			for j := range 10 {
				if _, err := l.Set(ctx, setReq(t, "u1", "article/hot", "like", (i+j)%2 == 0)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	stream := domain.StreamID{User: mustUser(t, "u1"), Target: mustTarget(t, "article/hot")}
	evs, err := domain.AppendEvents(nil, store.ReadEvents(ctx, domain.EventFilter{User: stream.User, TargetType: stream.Target.Type(), TargetID: stream.Target.ID()}))
	if err != nil || len(evs) == 0 {
		t.Fatal(len(evs), err)
	}
	for i, e := range evs {
		if e.StreamVersion != int64(i+1) {
			t.Fatalf("event %d has version %d", i, e.StreamVersion)
		}
		if i > 0 && e.Type == evs[i-1].Type {
			t.Fatalf("two %s in a row at version %d: decide let a no-op through", e.Type, e.StreamVersion)
		}
	}
	snap, _ := store.Snapshot(ctx, stream)
	last := evs[len(evs)-1]
	if snap.Version != last.StreamVersion || snap.State.Active(last.Kind) != last.On() {
		t.Fatalf("snapshot %+v disagrees with the last event %+v", snap, last)
	}
}

func TestLedgerImportIsIdempotent(t *testing.T) {
	ctx := context.Background()
	l, store := mustLedger(t)
	cmd := domain.Command{Stream: domain.StreamID{User: mustUser(t, "u1"), Target: mustTarget(t, "article/a1")},
		Kind: mustKind(t, "like"), On: true, EventID: domain.NewEventID()}
	if r, err := l.Import(ctx, cmd, 0); r != domain.Imported || err != nil {
		t.Fatal(r, err)
	}
	if r, err := l.Import(ctx, cmd, 0); r != domain.AlreadyImported || err != nil {
		t.Fatalf("re-import: %v, %v; want AlreadyImported", r, err)
	}
	if n, _ := store.LastPosition(ctx); n != 1 {
		t.Fatalf("head %d, want 1", n)
	}
}

// TestLedgerImportConflicts: imported history is not appended after events
// it did not write (a live like, then a 2025 cancel would undo it): the
// stream is not at the version the history expects, or the event would
// not change its state. (legacy.Apply refuses the later events of such a
// stream too.)
func TestLedgerImportConflicts(t *testing.T) {
	ctx := context.Background()
	l, store := mustLedger(t)
	stream := domain.StreamID{User: mustUser(t, "u9"), Target: mustTarget(t, "article/q9")}
	like := mustKind(t, "like")
	if _, err := l.Set(ctx, domain.SetRequest{User: stream.User, Target: stream.Target, Kind: like, On: true}); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	add := domain.Command{Stream: stream, Kind: like, On: true, EventID: domain.NewEventID(), OccurredAt: old}
	cancel := domain.Command{Stream: stream, Kind: like, On: false, EventID: domain.NewEventID(), OccurredAt: old.Add(time.Hour)}
	for _, c := range []struct {
		cmd   domain.Command
		after int64
	}{{add, 0}, {cancel, 0}} {
		if r, err := l.Import(ctx, c.cmd, c.after); r != domain.ImportConflict || err != nil {
			t.Errorf("import on %v after %d over a live like: %v, %v; want ImportConflict", c.cmd.On, c.after, r, err)
		}
	}
	if n, _ := store.LastPosition(ctx); n != 1 {
		t.Fatalf("head %d, want 1: the live like alone", n)
	}
}

// TestLedgerQueueImport: imports queued without waiting give Import's
// results (appended; a stream not at the expected version or one the
// command would not change is a conflict; a stored id, in its stream or
// another, was imported before) and are appended in the order queued.
func TestLedgerQueueImport(t *testing.T) {
	ctx := context.Background()
	l, store := mustLedger(t)
	like := mustKind(t, "like")
	live := domain.StreamID{User: mustUser(t, "u9"), Target: mustTarget(t, "article/q9")}
	if _, err := l.Set(ctx, domain.SetRequest{User: live.User, Target: live.Target, Kind: like, On: true}); err != nil {
		t.Fatal(err)
	}
	cmd := func(user string) domain.Command {
		return domain.Command{Stream: domain.StreamID{User: mustUser(t, user), Target: mustTarget(t, "article/a1")},
			Kind: like, On: true, EventID: domain.NewEventID(), OccurredAt: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	}
	first := cmd("u1")
	again := cmd("u2")
	again.EventID = first.EventID
	onLive := cmd("u9")
	onLive.Stream = live
	queued := []struct {
		cmd   domain.Command
		after int64
		want  domain.ImportResult
	}{
		{first, 0, domain.Imported}, {cmd("u3"), 0, domain.Imported}, {onLive, 0, domain.ImportConflict},
		{onLive, 1, domain.ImportConflict}, {first, 0, domain.AlreadyImported}, {again, 0, domain.AlreadyImported},
		{cmd("u4"), 0, domain.Imported},
	}
	var waits []domain.QueuedImport
	for _, q := range queued {
		w, err := l.QueueImport(ctx, q.cmd, q.after, nil)
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, w)
	}
	for i, w := range waits {
		if r, err := w.Wait(); r != queued[i].want || err != nil {
			t.Errorf("import %d: %v %v, want %v", i, r, err, queued[i].want)
		}
	}
	events, err := domain.AppendEvents(nil, store.ReadEvents(ctx, domain.EventFilter{After: 1}))
	if err != nil || len(events) != 3 || events[0].ID != first.EventID || events[1].ID != queued[1].cmd.EventID ||
		events[2].ID != queued[6].cmd.EventID {
		t.Fatalf("events after the live like %+v (%v), want imports 0, 1 and 6 in that order", events, err)
	}
}

// TestLedgerQueueImportFollows: an import queued to follow the one
// before it of its stream is a conflict when that one was, though the
// stream is at the version it expects (the live like there would be
// cancelled); it is imported when that one was imported now or before (a
// re-run), over a store that queues and over one that does not.
func TestLedgerQueueImportFollows(t *testing.T) {
	ctx := context.Background()
	like := mustKind(t, "like")
	when := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	stream := func(user string) domain.StreamID {
		return domain.StreamID{User: mustUser(t, user), Target: mustTarget(t, "article/a1")}
	}
	cmd := func(st domain.StreamID, on bool) domain.Command {
		return domain.Command{Stream: st, Kind: like, On: on, EventID: domain.NewEventID(), OccurredAt: when}
	}
	for name, open := range map[string]func(*sqlite.EventStore) domain.EventStore{
		"Queueing":    func(s *sqlite.EventStore) domain.EventStore { return s },
		"NotQueueing": func(s *sqlite.EventStore) domain.EventStore { return struct{ domain.EventStore }{s} },
	} {
		t.Run(name, func(t *testing.T) {
			store := mustStore(t)
			l := domain.NewLedger(open(store), domain.MustKindSet("like"), domain.LedgerConfig{}, nil)
			live, again, chain := stream("live"), stream("again"), stream("chain")
			if _, err := l.Set(ctx, domain.SetRequest{User: live.User, Target: live.Target, Kind: like, On: true}); err != nil {
				t.Fatal(err)
			}
			before := cmd(again, true)
			if r, err := l.Import(ctx, before, 0); r != domain.Imported || err != nil {
				t.Fatalf("import before: %v %v", r, err)
			}
			steps := []struct {
				cmd     domain.Command
				after   int64
				follows int // index of the step followed, or -1
				want    domain.ImportResult
			}{
				{cmd(live, true), 0, -1, domain.ImportConflict}, {cmd(live, false), 1, 0, domain.ImportConflict},
				{before, 0, -1, domain.AlreadyImported}, {cmd(again, false), 1, 2, domain.Imported},
				{cmd(chain, true), 0, -1, domain.Imported}, {cmd(chain, false), 1, 4, domain.Imported},
				{cmd(chain, true), 2, 5, domain.Imported},
			}
			var queued []domain.QueuedImport
			for _, s := range steps {
				var follows domain.QueuedImport
				if s.follows >= 0 {
					follows = queued[s.follows]
				}
				q, err := l.QueueImport(ctx, s.cmd, s.after, follows)
				if err != nil {
					t.Fatal(err)
				}
				queued = append(queued, q)
			}
			for i, q := range queued {
				if r, err := q.Wait(); r != steps[i].want || err != nil {
					t.Errorf("import %d: %v %v, want %v", i, r, err, steps[i].want)
				}
			}
			for st, want := range map[domain.StreamID]int64{live: 1, again: 2, chain: 3} {
				if snap, err := store.Snapshot(ctx, st); err != nil || snap.Version != want {
					t.Errorf("%s at version %d (%v), want %d", st, snap.Version, err, want)
				}
			}
		})
	}
}

func sameOutcome(a, b domain.Outcome) bool {
	return a.Changed == b.Changed && a.Active == b.Active && a.State.String() == b.State.String() &&
		a.StreamVersion == b.StreamVersion && a.Position == b.Position
}

// TestLedgerRefusesWhatItCannotReadBack: a request id too long or not
// UTF-8 would be stored in the event's metadata, which no read of the log
// could decode again; imports are validated as writes are.
func TestLedgerRefusesWhatItCannotReadBack(t *testing.T) {
	ctx := context.Background()
	l, store := mustLedger(t)
	base := domain.SetRequest{User: mustUser(t, "u1"), Target: mustTarget(t, "article/a1"), Kind: mustKind(t, "like"), On: true}
	for _, id := range []string{strings.Repeat("x", domain.MaxMetadataValueLen+1), "\xff"} {
		req := base
		req.RequestID = id
		if _, err := l.Set(ctx, req); !errors.Is(err, domain.ErrInvalidInput) {
			t.Errorf("request id %q: %v, want ErrInvalidInput", id[:1], err)
		}
	}
	stream := domain.StreamID{User: base.User, Target: base.Target}
	for name, c := range map[string]struct {
		cmd   domain.Command
		after int64
		want  error
	}{
		"Zero":          {domain.Command{}, 0, domain.ErrInvalidInput},
		"UnknownKind":   {domain.Command{Stream: stream, Kind: mustKind(t, "follow"), On: true, EventID: domain.NewEventID()}, 0, domain.ErrUnknownKind},
		"NegativeAfter": {domain.Command{Stream: stream, Kind: base.Kind, On: true, EventID: domain.NewEventID()}, -1, domain.ErrInvalidInput},
		"NoEventID":     {domain.Command{Stream: stream, Kind: base.Kind, On: true}, 0, domain.ErrInvalidInput},
	} {
		if _, err := l.Import(ctx, c.cmd, c.after); !errors.Is(err, c.want) {
			t.Errorf("import %s: %v, want %v", name, err, c.want)
		}
	}
	if n, _ := store.LastPosition(ctx); n != 0 {
		t.Fatalf("head %d, want 0: nothing appended", n)
	}
}

// The ids "." and ".." match the id form but no URL path can carry them:
// writes and imports refuse them, reads of them still decode.
func TestLedgerRefusesDotSegments(t *testing.T) {
	ctx := context.Background()
	l, store := mustLedger(t)
	like := mustKind(t, "like")
	for _, c := range []struct{ user, target string }{{".", "article/a1"}, {"..", "article/a1"}, {"u1", "article/."}, {"u1", "article/.."}} {
		req := domain.SetRequest{User: mustUser(t, c.user), Target: mustTarget(t, c.target), Kind: like, On: true}
		if _, err := l.Set(ctx, req); !errors.Is(err, domain.ErrInvalidInput) {
			t.Errorf("set %s on %s: %v, want ErrInvalidInput", c.user, c.target, err)
		}
		cmd := domain.Command{Stream: domain.StreamID{User: req.User, Target: req.Target}, Kind: like, On: true, EventID: domain.NewEventID()}
		if _, err := l.Import(ctx, cmd, 0); !errors.Is(err, domain.ErrInvalidInput) {
			t.Errorf("import %s on %s: %v, want ErrInvalidInput", c.user, c.target, err)
		}
	}
	if n, _ := store.LastPosition(ctx); n != 0 {
		t.Fatalf("head %d, want 0: nothing appended", n)
	}
	if _, err := l.Set(ctx, domain.SetRequest{User: mustUser(t, "u.1"), Target: mustTarget(t, "article/..a"), Kind: like, On: true}); err != nil {
		t.Fatalf("ids with dots that are not dot segments: %v", err)
	}
}

// A Ledger without a store refuses writes by name instead of a nil
// dereference.
func TestLedgerWithoutStore(t *testing.T) {
	l := domain.NewLedger(nil, domain.MustKindSet("like"), domain.LedgerConfig{}, nil)
	req := domain.SetRequest{User: mustUser(t, "u1"), Target: mustTarget(t, "article/a1"), Kind: mustKind(t, "like"), On: true}
	if _, err := l.Set(context.Background(), req); !errors.Is(err, domain.ErrInvalidInput) {
		t.Fatalf("Set without a store: %v, want ErrInvalidInput", err)
	}
	cmd := domain.Command{Stream: domain.StreamID{User: req.User, Target: req.Target}, Kind: req.Kind, On: true, EventID: domain.NewEventID()}
	if _, err := l.Import(context.Background(), cmd, 0); !errors.Is(err, domain.ErrInvalidInput) {
		t.Fatalf("Import without a store: %v, want ErrInvalidInput", err)
	}
}

// TestDecideThenAppendKeyBeforeVersion: a retry of a keyed write with
// If-Match, decided against a snapshot the first try (recorded under the
// key) has already moved past its version, is ErrIdempotencyKeyTaken, so
// that Ledger.Set replays the first outcome, not ErrPreconditionFailed (as
// the deciding stores answer it: storetest's KeyBeforeVersion).
func TestDecideThenAppendKeyBeforeVersion(t *testing.T) {
	store := mustStore(t)
	st := domain.StreamID{User: mustUser(t, "u1"), Target: mustTarget(t, "article/a1")}
	zero := int64(0)
	req := func() domain.DecideRequest {
		return domain.DecideRequest{
			Command:         domain.Command{Stream: st, Kind: mustKind(t, "like"), On: true, OccurredAt: time.Now(), EventID: domain.NewEventID()},
			ExpectedVersion: &zero,
			Idempotency:     &domain.IdempotencyRecord{User: st.User, Key: "k-1", RequestHash: "h"},
		}
	}
	if _, err := domain.DecideThenAppend(t.Context(), store, req()); err != nil {
		t.Fatal(err)
	}
	if _, err := domain.DecideThenAppend(t.Context(), store, req()); !errors.Is(err, domain.ErrIdempotencyKeyTaken) {
		t.Fatalf("the retry at a version its first try moved: %v, want ErrIdempotencyKeyTaken", err)
	}
	other := req()
	other.Idempotency.Key = "k-2"
	if _, err := domain.DecideThenAppend(t.Context(), store, other); !errors.Is(err, domain.ErrPreconditionFailed) {
		t.Fatalf("another key at a stale version: %v, want ErrPreconditionFailed", err)
	}
}
