package storetest

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/interactionledger/ledger/adapters/eventcodec"
	"github.com/interactionledger/ledger/domain"
)

// Opener opens the store named path, creating it when missing; opening
// the same path again (after the first store is closed) must show the same
// data. Stores that implement io.Closer are closed by the restart test; the
// opener should also close them with t.Cleanup.
type Opener func(t *testing.T, path string) domain.EventStore

// Run runs the EventStore contract suite against the stores open returns.
// Each subtest gets a fresh store in its own temporary directory.
func Run(t *testing.T, open Opener) {
	fresh := func(t *testing.T) domain.EventStore {
		t.Helper()
		return open(t, filepath.Join(t.TempDir(), "ledger.db"))
	}
	t.Run("Append", func(t *testing.T) { testAppend(t, fresh) })
	t.Run("Batch", func(t *testing.T) { testBatch(t, fresh) })
	t.Run("Idempotency", func(t *testing.T) { testIdempotency(t, fresh) })
	t.Run("ReadEvents", func(t *testing.T) { testReadEvents(t, fresh) })
	t.Run("ReadLatest", func(t *testing.T) { testReadLatest(t, fresh) })
	t.Run("Snapshot", func(t *testing.T) { testSnapshot(t, fresh) })
	t.Run("Restart", func(t *testing.T) { testRestart(t, open) })
	t.Run("LogID", func(t *testing.T) { testLogID(t, open, fresh) })
	t.Run("Committed", func(t *testing.T) { testCommitted(t, fresh) })
	t.Run("Cancel", func(t *testing.T) { testCancel(t, fresh) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, fresh) })
}

type freshFunc func(t *testing.T) domain.EventStore

func testAppend(t *testing.T, fresh freshFunc) {
	t.Run("OK", func(t *testing.T) {
		s := fresh(t)
		st := MustStream(t, "alice", "article/a1")
		req := request(t, st, 0, "like", true)
		req.Events = append(req.Events, event(t, st, 2, "collect", true,
			domain.MustMetadata(map[string]string{"request_id": "r-1", "note": "ünïcode \"quoted\""})))
		req.State = domain.Evolve(req.State, req.Events[1])
		res := MustAppend(t, s, req)
		if res.LastPosition != 2 || res.RecordedAt.IsZero() {
			t.Fatalf("result %+v, want last position 2 and a recorded time", res)
		}
		want := committed(req, res)
		checkEvents(t, MustReadAll(t, s, domain.EventFilter{}), want)
		stream := domain.EventFilter{User: st.User, TargetType: st.Target.Type(), TargetID: st.Target.ID()}
		checkEvents(t, MustReadAll(t, s, stream), want)
		if last, err := s.LastPosition(t.Context()); err != nil || last != 2 {
			t.Fatalf("last position %d, %v; want 2", last, err)
		}
		for _, e := range want {
			if ok, err := s.HasEvent(t.Context(), e.ID); err != nil || !ok {
				t.Fatalf("has event %s: %t, %v", e.ID, ok, err)
			}
		}
		if ok, err := s.HasEvent(t.Context(), domain.NewEventID()); err != nil || ok {
			t.Fatalf("has unknown event: %t, %v", ok, err)
		}
	})
	t.Run("ErrVersionConflict", func(t *testing.T) {
		s := fresh(t)
		st := MustStream(t, "alice", "article/a1")
		MustAppend(t, s, request(t, st, 0, "like", true))
		for _, expected := range []int64{0, 2, 7} {
			_, err := s.Append(t.Context(), request(t, st, expected, "like", false))
			if !errors.Is(err, domain.ErrVersionConflict) {
				t.Fatalf("append at %d to a stream at 1: %v, want ErrVersionConflict", expected, err)
			}
		}
		_, err := s.Append(t.Context(), request(t, MustStream(t, "bob", "article/a1"), 1, "like", true))
		if !errors.Is(err, domain.ErrVersionConflict) {
			t.Fatalf("append at 1 to an empty stream: %v, want ErrVersionConflict", err)
		}
		checkCount(t, s, 1)
	})
	// One event and several take different paths through a store.
	for _, toggles := range [][]bool{{true}, {true, false}} {
		t.Run(fmt.Sprintf("ErrDuplicateEvent/%d", len(toggles)), func(t *testing.T) {
			s := fresh(t)
			first := request(t, MustStream(t, "alice", "article/a1"), 0, "like", true)
			MustAppend(t, s, first)
			other := MustStream(t, "bob", "video/v1")
			dup := request(t, other, 0, "like", toggles...)
			dup.Events[len(toggles)-1].ID = first.Events[0].ID
			if _, err := s.Append(t.Context(), dup); !errors.Is(err, domain.ErrDuplicateEvent) {
				t.Fatalf("append with an existing id in another stream: %v, want ErrDuplicateEvent", err)
			}
			checkCount(t, s, 1)
			if snap := mustSnapshot(t, s, other); snap.Version != 0 {
				t.Fatalf("stream of the failed append has snapshot %+v, want none", snap)
			}
			MustAppend(t, s, request(t, other, 0, "like", true))
			checkCount(t, s, 2)
		})
	}
	t.Run("ErrContextDone", func(t *testing.T) {
		s := fresh(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := s.Append(ctx, request(t, MustStream(t, "alice", "article/a1"), 0, "like", true))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("append with a cancelled context: %v, want context.Canceled", err)
		}
		checkCount(t, s, 0)
		if _, err := s.Snapshot(ctx, MustStream(t, "alice", "article/a1")); !errors.Is(err, context.Canceled) {
			t.Fatalf("snapshot with a cancelled context: %v, want context.Canceled", err)
		}
		alice := MustStream(t, "alice", "article/a1").User
		if _, _, err := s.Idempotency(ctx, alice, "k1"); !errors.Is(err, context.Canceled) {
			t.Fatalf("idempotency with a cancelled context: %v, want context.Canceled", err)
		}
		if _, err := s.HasEvent(ctx, domain.NewEventID()); !errors.Is(err, context.Canceled) {
			t.Fatalf("has event with a cancelled context: %v, want context.Canceled", err)
		}
	})
}

// checkCount checks that the log holds exactly positions 1..n.
func checkCount(t *testing.T, s domain.EventStore, n int64) {
	t.Helper()
	got := positions(MustReadAll(t, s, domain.EventFilter{}))
	want := make([]int64, n)
	for i := range want {
		want[i] = int64(i) + 1
	}
	if !slices.Equal(got, want) {
		t.Fatalf("positions %v, want 1..%d", got, n)
	}
	if last, err := s.LastPosition(t.Context()); err != nil || last != n {
		t.Fatalf("last position %d, %v; want %d", last, err, n)
	}
}

func mustSnapshot(t *testing.T, s domain.EventStore, st domain.StreamID) domain.Snapshot {
	t.Helper()
	snap, err := s.Snapshot(t.Context(), st)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// testBatch sends good and bad appends at once, so that stores that batch
// appends put them in the same transaction: the bad ones must fail alone.
func testBatch(t *testing.T, fresh freshFunc) {
	t.Run("OneBadFailsAlone", func(t *testing.T) {
		s := fresh(t)
		taken := request(t, MustStream(t, "alice", "article/a1"), 0, "like", true)
		MustAppend(t, s, taken)
		const n = 48
		reqs := make([]domain.AppendRequest, n)
		wantErr := make([]error, n)
		for i := range reqs {
			reqs[i] = request(t, MustStream(t, name("u", i), "article/a1"), 0, "like", true)
			switch i % 8 {
			case 3:
				reqs[i].Events[0].ID = taken.Events[0].ID
				wantErr[i] = domain.ErrDuplicateEvent
			case 5:
				reqs[i] = request(t, taken.Stream, 0, "like", false)
				wantErr[i] = domain.ErrVersionConflict
			}
		}
		errs := appendAll(t, s, reqs)
		good := int64(1)
		for i, err := range errs {
			if !errors.Is(err, wantErr[i]) {
				t.Errorf("append %d: %v, want %v", i, err, wantErr[i])
			}
			if err == nil {
				good++
			}
		}
		checkCount(t, s, good)
	})
	t.Run("SameStream", func(t *testing.T) {
		s := fresh(t)
		st := MustStream(t, "alice", "article/a1")
		reqs := make([]domain.AppendRequest, 32)
		for i := range reqs {
			reqs[i] = request(t, st, 0, "like", true)
		}
		wins := 0
		for i, err := range appendAll(t, s, reqs) {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, domain.ErrVersionConflict):
				t.Errorf("append %d: %v, want nil or ErrVersionConflict", i, err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d appends at version 0 succeeded, want 1", wins)
		}
		if snap := mustSnapshot(t, s, st); snap.Version != 1 || snap.LastPosition != 1 {
			t.Fatalf("snapshot %+v, want version 1 at position 1", snap)
		}
		checkCount(t, s, 1)
	})
}

// appendAll appends reqs concurrently, released together, and returns
// their errors.
func appendAll(t *testing.T, s domain.EventStore, reqs []domain.AppendRequest) []error {
	t.Helper()
	errs := make([]error, len(reqs))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, req := range reqs {
		wg.Go(func() {
			<-start
			_, errs[i] = s.Append(t.Context(), req)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func testIdempotency(t *testing.T, fresh freshFunc) {
	record := func(user domain.UserID, key string, version int64) *domain.IdempotencyRecord {
		state := domain.State{}.With(MustKind(t, "like"), true)
		return &domain.IdempotencyRecord{
			User: user, Key: key, RequestHash: "hash-" + key,
			Outcome: domain.Outcome{Changed: true, Active: true, State: state, StreamVersion: version},
		}
	}
	t.Run("OK", func(t *testing.T) {
		s := fresh(t)
		MustAppend(t, s, request(t, MustStream(t, "bob", "video/v1"), 0, "like", true))
		st := MustStream(t, "alice", "article/a1")
		req := request(t, st, 0, "like", true)
		req.Idempotency = record(st.User, "key-1", 1)
		res := MustAppend(t, s, req)
		rec, ok, err := s.Idempotency(t.Context(), st.User, "key-1")
		if err != nil || !ok {
			t.Fatalf("idempotency: %t, %v", ok, err)
		}
		want := *req.Idempotency
		want.Outcome.Position = res.LastPosition
		checkRecord(t, rec, want)
		if _, ok, err := s.Idempotency(t.Context(), MustUser(t, "bob"), "key-1"); err != nil || ok {
			t.Fatalf("another user's key: %t, %v; want none", ok, err)
		}
	})
	t.Run("OKWithoutEvents", func(t *testing.T) {
		s := fresh(t)
		st := MustStream(t, "alice", "article/a1")
		MustAppend(t, s, request(t, st, 0, "like", true))
		rec := record(st.User, "key-2", 1)
		rec.Outcome.Changed, rec.Outcome.Position = false, 1
		res := MustAppend(t, s, domain.AppendRequest{Stream: st, ExpectedVersion: 1,
			State: rec.Outcome.State, Idempotency: rec})
		if res.LastPosition != 0 {
			t.Fatalf("last position %d for an append without events, want 0", res.LastPosition)
		}
		got, ok, err := s.Idempotency(t.Context(), st.User, "key-2")
		if err != nil || !ok {
			t.Fatalf("idempotency: %t, %v", ok, err)
		}
		checkRecord(t, got, *rec)
		checkCount(t, s, 1)
		_, err = s.Append(t.Context(), domain.AppendRequest{Stream: st, ExpectedVersion: 0,
			State: rec.Outcome.State, Idempotency: record(st.User, "key-3", 1)})
		if !errors.Is(err, domain.ErrVersionConflict) {
			t.Fatalf("record-only append at a stale version: %v, want ErrVersionConflict", err)
		}
		if _, ok, _ := s.Idempotency(t.Context(), st.User, "key-3"); ok {
			t.Fatal("the conflicting append's record was stored")
		}
	})
	t.Run("ErrIdempotencyKeyTaken", func(t *testing.T) {
		s := fresh(t)
		first := MustStream(t, "alice", "article/a1")
		req := request(t, first, 0, "like", true)
		req.Idempotency = record(first.User, "key-1", 1)
		MustAppend(t, s, req)
		second := MustStream(t, "alice", "article/a2")
		again := request(t, second, 0, "like", true)
		again.Idempotency = record(second.User, "key-1", 1)
		if _, err := s.Append(t.Context(), again); !errors.Is(err, domain.ErrIdempotencyKeyTaken) {
			t.Fatalf("append with a recorded key: %v, want ErrIdempotencyKeyTaken", err)
		}
		if snap := mustSnapshot(t, s, second); snap.Version != 0 {
			t.Fatalf("the refused append changed its stream: %+v", snap)
		}
		checkCount(t, s, 1)
	})
	t.Run("MismatchNamesFields", func(t *testing.T) { testMismatchNamesFields(t, fresh(t)) })
	t.Run("OlderServersRecord", func(t *testing.T) { testOlderServersRecord(t, fresh(t)) })
}

// testOlderServersRecord checks that a record of an older server, which
// kept one hash of the whole request, still answers its retry with the
// first outcome, and another request with a mismatch that names no field.
func testOlderServersRecord(t *testing.T, s domain.EventStore) {
	st := MustStream(t, "alice", "article/a1")
	req := request(t, st, 0, "like", true)
	sum := sha256.Sum256([]byte("true\narticle/a1\nlike\n\"source\"=\"web\"\n")) // as older servers wrote it
	req.Idempotency = &domain.IdempotencyRecord{User: st.User, Key: "k-old", RequestHash: hex.EncodeToString(sum[:]),
		Outcome: domain.Outcome{Changed: true, Active: true, State: req.State, StreamVersion: 1}}
	res := MustAppend(t, s, req)
	l := domain.NewLedger(s, domain.MustKindSet("like"), domain.LedgerConfig{}, nil)
	retry := domain.SetRequest{User: st.User, Target: st.Target, Kind: MustKind(t, "like"), On: true,
		IdempotencyKey: "k-old", Metadata: domain.MustMetadata(map[string]string{"source": "web"})}
	if out, err := l.Set(t.Context(), retry); err != nil || out.Position != res.LastPosition || !out.Changed {
		t.Fatalf("retry of an older server's request: %+v %v, want its first outcome at %d", out, err, res.LastPosition)
	}
	retry.On = false
	var mm *domain.IdempotencyMismatchError
	if _, err := l.Set(t.Context(), retry); !errors.As(err, &mm) || mm.Fields != nil || mm.Position != res.LastPosition {
		t.Fatalf("another request with an older server's key: %v (%+v), want a mismatch naming no field", err, mm)
	}
}

// testMismatchNamesFields checks that a key reused with another request is
// refused naming what differs from the first request (and only that), with
// the first request's position: the same over every store, which keeps
// the first request's fingerprint as it was given.
func testMismatchNamesFields(t *testing.T, s domain.EventStore) {
	l := domain.NewLedger(s, domain.MustKindSet("like", "collect"), domain.LedgerConfig{}, nil)
	v0 := int64(0)
	first := domain.SetRequest{User: MustUser(t, "alice"), Target: MustTarget(t, "article/a1"), Kind: MustKind(t, "like"),
		On: true, IdempotencyKey: "k-1", ExpectedVersion: &v0, Metadata: domain.MustMetadata(map[string]string{"source": "web"})}
	out, err := l.Set(t.Context(), first)
	if err != nil {
		t.Fatal(err)
	}
	v1 := int64(1)
	cases := map[string]func(r *domain.SetRequest){
		"on":               func(r *domain.SetRequest) { r.On = false },
		"target":           func(r *domain.SetRequest) { r.Target = MustTarget(t, "article/a2") },
		"kind":             func(r *domain.SetRequest) { r.Kind = MustKind(t, "collect") },
		"expected_version": func(r *domain.SetRequest) { r.ExpectedVersion = &v1 },
		"metadata":         func(r *domain.SetRequest) { r.Metadata = domain.MustMetadata(map[string]string{"source": "app"}) },
		"on,metadata": func(r *domain.SetRequest) {
			r.On, r.Metadata = false, domain.Metadata{}
		},
		"kind,expected_version": func(r *domain.SetRequest) { r.ExpectedVersion, r.Kind = nil, MustKind(t, "collect") },
	}
	for want, change := range cases {
		r := first
		r.RequestID = "another-request" // every retry has its own: not compared
		change(&r)
		_, err := l.Set(t.Context(), r)
		var mm *domain.IdempotencyMismatchError
		if !errors.As(err, &mm) || !errors.Is(err, domain.ErrIdempotencyMismatch) {
			t.Fatalf("%s differs: %v, want an *IdempotencyMismatchError", want, err)
		}
		if got := strings.Join(mm.Fields, ","); got != want || mm.Position != out.Position {
			t.Errorf("%s differs: fields %q, position %d; want %q, %d (the first request's)", want, got, mm.Position, want, out.Position)
		}
	}
	r := first
	r.RequestID = "a-retry"
	if again, err := l.Set(t.Context(), r); err != nil || again.Position != out.Position {
		t.Fatalf("the same request again: %+v %v, want the first outcome", again, err)
	}
}

func checkRecord(t *testing.T, got, want domain.IdempotencyRecord) {
	t.Helper()
	if got.User != want.User || got.Key != want.Key || got.RequestHash != want.RequestHash ||
		got.Outcome.Changed != want.Outcome.Changed || got.Outcome.Active != want.Outcome.Active ||
		got.Outcome.State.String() != want.Outcome.State.String() ||
		got.Outcome.StreamVersion != want.Outcome.StreamVersion || got.Outcome.Position != want.Outcome.Position {
		t.Fatalf("record\n got  %+v\n want %+v", got, want)
	}
	if got.CreatedAt.IsZero() {
		t.Fatal("record has no creation time")
	}
}

// history appends a small mixed history and returns every event in
// position order.
func history(t *testing.T, s domain.EventStore) []domain.Event {
	t.Helper()
	var all []domain.Event
	for _, user := range []string{"alice", "bob", "carol"} {
		for _, target := range []string{"article/a1", "article/a2", "video/a1"} {
			st := MustStream(t, user, target)
			req := request(t, st, 0, "like", true, false)
			req.Events = append(req.Events, event(t, st, 3, "collect", true, domain.MustMetadata(map[string]string{"u": user})))
			req.State = domain.Evolve(req.State, req.Events[2])
			res := MustAppend(t, s, req)
			all = append(all, committed(req, res)...)
		}
	}
	return all
}

// farPast and farFuture are outside the times an event can hold.
var (
	farPast   = time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)
	farFuture = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
)

func testReadEvents(t *testing.T, fresh freshFunc) {
	s := fresh(t)
	all := history(t, s)
	mid := all[len(all)/2].OccurredAt
	late := all[len(all)*3/4].OccurredAt
	cases := []struct {
		name string
		f    domain.EventFilter
		keep func(e domain.Event) bool
	}{
		{"All", domain.EventFilter{}, func(domain.Event) bool { return true }},
		{"After", domain.EventFilter{After: 5}, func(e domain.Event) bool { return e.Position > 5 }},
		{"Limit", domain.EventFilter{After: 3, Limit: 4}, func(e domain.Event) bool { return e.Position > 3 && e.Position <= 7 }},
		{"User", domain.EventFilter{User: MustUser(t, "bob")}, func(e domain.Event) bool { return e.User.String() == "bob" }},
		{"TargetType", domain.EventFilter{TargetType: "video"}, func(e domain.Event) bool { return e.Target.Type() == "video" }},
		{"Target", domain.EventFilter{TargetType: "article", TargetID: "a1"},
			func(e domain.Event) bool { return e.Target.String() == "article/a1" }},
		{"TargetIDOfAnyType", domain.EventFilter{TargetID: "a1"}, func(e domain.Event) bool { return e.Target.ID() == "a1" }},
		{"Kind", domain.EventFilter{Kind: MustKind(t, "collect")}, func(e domain.Event) bool { return e.Kind.String() == "collect" }},
		{"Since", domain.EventFilter{Since: mid}, func(e domain.Event) bool { return !e.OccurredAt.Before(mid) }},
		{"Until", domain.EventFilter{Until: mid}, func(e domain.Event) bool { return e.OccurredAt.Before(mid) }},
		{"Combined", domain.EventFilter{User: MustUser(t, "carol"), Kind: MustKind(t, "like"), Since: mid, Until: late, After: 1, Limit: 2},
			nil},
		{"None", domain.EventFilter{User: MustUser(t, "nobody")}, func(domain.Event) bool { return false }},
		// Bounds beyond the times an event can hold (domain.MinTime,
		// MaxTime) select as the bounds themselves: their Unix
		// nanoseconds would overflow.
		{"SinceBeyond", domain.EventFilter{Since: farFuture}, func(domain.Event) bool { return false }},
		{"UntilBeyond", domain.EventFilter{Until: farFuture}, func(domain.Event) bool { return true }},
		{"SinceBefore", domain.EventFilter{Since: farPast}, func(domain.Event) bool { return true }},
		{"UntilBefore", domain.EventFilter{Until: farPast}, func(domain.Event) bool { return false }},
		{"SinceMax", domain.EventFilter{Since: domain.MaxTime}, func(domain.Event) bool { return false }},
		{"UntilMin", domain.EventFilter{Until: domain.MinTime}, func(domain.Event) bool { return false }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var want []domain.Event
			for _, e := range all {
				if c.keep == nil && e.User.String() == "carol" && e.Kind.String() == "like" &&
					!e.OccurredAt.Before(mid) && e.OccurredAt.Before(late) && len(want) < 2 {
					want = append(want, e)
				}
				if c.keep != nil && c.keep(e) {
					want = append(want, e)
				}
			}
			checkEvents(t, MustReadAll(t, s, c.f), want)
		})
	}
	t.Run("BadFilter", func(t *testing.T) {
		for _, f := range []domain.EventFilter{{Limit: -1}, {After: -1}} {
			for _, err := range s.ReadEvents(t.Context(), f) {
				if !errors.Is(err, domain.ErrInvalidInput) {
					t.Errorf("filter %+v: %v, want ErrInvalidInput", f, err)
				}
			}
			if _, err := domain.AppendEvents(nil, s.ReadEvents(t.Context(), f)); err == nil {
				t.Errorf("filter %+v read without an error", f)
			}
		}
	})
	t.Run("StopEarly", func(t *testing.T) {
		stopEarly(t, s.ReadEvents(t.Context(), domain.EventFilter{}))
		checkEvents(t, MustReadAll(t, s, domain.EventFilter{}), all)
	})
	t.Run("ExportedTimeGivenBack", func(t *testing.T) { exportedTimeGivenBack(t, s) })
}

// exportedTimeGivenBack checks what docs/api.md ("Times") promises: an
// event's occurred_at as exports write it (milliseconds), parsed back as
// since selects the event, as until leaves it out. An export that rounded
// (…59.999999999 to the next second) or a store that kept less than it was
// given would lose it from its own since.
func exportedTimeGivenBack(t *testing.T, s domain.EventStore) {
	st := MustStream(t, "exported", "article/t1")
	req := request(t, st, 0, "like", true)
	req.Events[0].OccurredAt = time.Date(2026, 11, 22, 9, 59, 59, 999999999, time.UTC)
	MustAppend(t, s, req)
	exported := req.Events[0].OccurredAt.Format(eventcodec.TimeFormat)
	at, err := domain.ParseTime(exported)
	if err != nil {
		t.Fatalf("%s: %v", exported, err)
	}
	user := MustUser(t, "exported")
	if got := MustReadAll(t, s, domain.EventFilter{User: user, Since: at}); len(got) != 1 {
		t.Errorf("since=%s: %d events, want the one it was exported from", exported, len(got))
	}
	if got := MustReadAll(t, s, domain.EventFilter{User: user, Until: at}); len(got) != 0 {
		t.Errorf("until=%s: %d events, want none", exported, len(got))
	}
}

// testReadLatest checks the optional domain.LatestReader: at every upTo,
// exactly the toggle of the last event of each (stream, kind) at or
// before it.
func testReadLatest(t *testing.T, fresh freshFunc) {
	s := fresh(t)
	lr, ok := s.(domain.LatestReader)
	if !ok {
		t.Skip("the store does not implement domain.LatestReader (optional)")
	}
	all := history(t, s)
	for upTo := int64(0); upTo <= int64(len(all))+1; upTo++ {
		got, err := domain.AppendEvents(nil, lr.ReadLatest(t.Context(), upTo))
		if err != nil {
			t.Fatalf("ReadLatest(%d): %v", upTo, err)
		}
		CheckToggles(t, got, LatestToggles(all, upTo))
	}
	stopEarly(t, lr.ReadLatest(t.Context(), int64(len(all))))
	checkEvents(t, MustReadAll(t, s, domain.EventFilter{}), all)
}

// LatestToggles is what a domain.LatestReader must yield at upTo for a
// log of events (in position order), sorted by position.
func LatestToggles(events []domain.Event, upTo int64) []domain.Toggle {
	last := map[string]domain.Toggle{}
	for _, e := range events {
		if e.Position <= upTo {
			last[e.Stream().String()+" "+e.Kind.String()] = e.Toggle()
		}
	}
	want := slices.Collect(maps.Values(last))
	slices.SortFunc(want, byPosition)
	return want
}

// CheckToggles sorts got by position and compares it with want (sorted).
func CheckToggles(tb testing.TB, got, want []domain.Toggle) {
	tb.Helper()
	slices.SortFunc(got, byPosition)
	if len(got) != len(want) {
		tb.Fatalf("got %d toggles, want %d", len(got), len(want))
	}
	for i, g := range got {
		w := want[i]
		if g.Stream != w.Stream || g.Kind != w.Kind || g.On != w.On || g.Position != w.Position || !g.OccurredAt.Equal(w.OccurredAt) {
			tb.Errorf("toggle %d:\n got  %+v\n want %+v", i, g, w)
		}
	}
}

func byPosition(a, b domain.Toggle) int { return cmp.Compare(a.Position, b.Position) }

// stopEarly breaks out of seq after 3 events: the sequence must stop
// yielding (a yield after false panics in range-over-func) and release
// what it holds, which the caller checks by reading again.
func stopEarly[T any](t *testing.T, seq iter.Seq2[T, error]) {
	t.Helper()
	n := 0
	for _, err := range seq {
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if n++; n == 3 {
			break
		}
	}
	if n != 3 {
		t.Fatalf("read %d events before stopping, want 3", n)
	}
}

func testSnapshot(t *testing.T, fresh freshFunc) {
	s := fresh(t)
	history(t, s)
	st := MustStream(t, "carol", "video/a1")
	snap := mustSnapshot(t, s, st)
	if snap.Version != 3 || snap.LastPosition != 27 || snap.State.String() != "collect" {
		t.Fatalf("snapshot %+v (state %q), want version 3, position 27, state collect", snap, snap.State)
	}
	req := request(t, st, 3, "like", true)
	req.State = snap.State.With(MustKind(t, "like"), true)
	res := MustAppend(t, s, req)
	snap = mustSnapshot(t, s, st)
	if snap.Version != 4 || snap.LastPosition != res.LastPosition || snap.State.String() != "collect,like" {
		t.Fatalf("snapshot %+v (state %q), want version 4 at %d, state collect,like", snap, snap.State, res.LastPosition)
	}
	if snap := mustSnapshot(t, s, MustStream(t, "nobody", "article/a1")); snap.Version != 0 ||
		snap.LastPosition != 0 || snap.State.String() != "" {
		t.Fatalf("unknown stream has snapshot %+v", snap)
	}
}

func testRestart(t *testing.T, open Opener) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s := open(t, path)
	all := history(t, s)
	st := MustStream(t, "alice", "article/a1")
	req := request(t, MustStream(t, "dave", "article/a1"), 0, "like", true)
	req.Idempotency = &domain.IdempotencyRecord{User: MustUser(t, "dave"), Key: "k", RequestHash: "h",
		Outcome: domain.Outcome{Changed: true, Active: true, State: req.State, StreamVersion: 1}}
	res := MustAppend(t, s, req)
	all = append(all, committed(req, res)...)
	closeStore(t, s)

	s = open(t, path)
	checkEvents(t, MustReadAll(t, s, domain.EventFilter{}), all)
	if snap := mustSnapshot(t, s, st); snap.Version != 3 || snap.State.String() != "collect" {
		t.Fatalf("snapshot after restart %+v", snap)
	}
	if rec, ok, err := s.Idempotency(t.Context(), MustUser(t, "dave"), "k"); err != nil || !ok ||
		rec.Outcome.Position != res.LastPosition {
		t.Fatalf("idempotency after restart: %+v, %t, %v", rec, ok, err)
	}
	next := MustAppend(t, s, request(t, MustStream(t, "erin", "article/a1"), 0, "like", true))
	if next.LastPosition != int64(len(all))+1 {
		t.Fatalf("first append after restart at %d, want %d", next.LastPosition, len(all)+1)
	}
	closeStore(t, s)
}

// testLogID checks the log's identity: a UUID, the same after a restart
// (and for a second store on the same log), another for another log.
func testLogID(t *testing.T, open Opener, fresh freshFunc) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s := open(t, path)
	id := s.LogID()
	if u, err := uuid.Parse(id); err != nil || u.String() != id || u == uuid.Nil {
		t.Fatalf("LogID %q is not a UUID in canonical form: %v", id, err)
	}
	MustAppend(t, s, request(t, MustStream(t, "alice", "article/a1"), 0, "like", true))
	closeStore(t, s)
	s = open(t, path)
	if again := s.LogID(); again != id {
		t.Fatalf("LogID after a restart %q, want %q", again, id)
	}
	if other := fresh(t).LogID(); other == id {
		t.Fatalf("another log has the same LogID %q", id)
	}
	closeStore(t, s)
}

func closeStore(t *testing.T, s domain.EventStore) {
	t.Helper()
	c, ok := s.(io.Closer)
	if !ok {
		t.Fatalf("%T does not implement io.Closer; the restart test needs it", s)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func testCommitted(t *testing.T, fresh freshFunc) {
	s := fresh(t)
	for i := range 3 {
		ch := s.Committed()
		select {
		case <-ch:
			t.Fatal("commit signalled before any append")
		default:
		}
		MustAppend(t, s, request(t, MustStream(t, name("u", i), "article/a1"), 0, "like", true))
		<-ch // blocks forever (test timeout) if the commit is not signalled
	}
	// A tailer waiting for the next commit wakes when the store closes,
	// and finds it closed, rather than waiting for ever.
	if c, ok := s.(io.Closer); ok {
		waiting := s.Committed()
		c.Close()
		select {
		case <-waiting:
		case <-time.After(10 * time.Second):
			t.Fatal("a waiter on Committed was not woken by Close")
		}
		<-s.Committed() // closed for good
	}
}

// testCancel cancels appends at arbitrary moments: each caller must be told
// the truth, the append being either wholly stored or absent.
func testCancel(t *testing.T, fresh freshFunc) {
	s := fresh(t)
	const n = 200
	reqs := make([]domain.AppendRequest, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range reqs {
		reqs[i] = request(t, MustStream(t, name("u", i), "article/a1"), 0, "like", true, false)
		ctx, cancel := context.WithCancel(t.Context())
		wg.Go(func() { _, errs[i] = s.Append(ctx, reqs[i]) })
		if i%3 == 0 {
			cancel()
		}
		defer cancel()
	}
	wg.Wait()
	stored := 0
	for i, err := range errs {
		var want bool
		switch {
		case err == nil:
			want, stored = true, stored+2
		case errors.Is(err, context.Canceled):
		default:
			t.Fatalf("append %d: %v, want nil or context.Canceled", i, err)
		}
		for _, e := range reqs[i].Events {
			if ok, err := s.HasEvent(t.Context(), e.ID); err != nil || ok != want {
				t.Fatalf("append %d answered %v, its event %s stored: %t (%v)", i, errs[i], e.ID, ok, err)
			}
		}
	}
	checkCount(t, s, int64(stored))
}

// testConcurrent runs 64 appenders on their own streams and on a few shared
// ones (retrying conflicts from a fresh snapshot): no event may be lost or
// duplicated, and positions must be exactly 1..N.
func testConcurrent(t *testing.T, fresh freshFunc) {
	s := fresh(t)
	const appenders, rounds, shared = 64, 12, 4
	var mu sync.Mutex
	ids := map[uuid.UUID]bool{}
	var wg sync.WaitGroup
	for a := range appenders {
		wg.Go(func() {
			for r := range rounds {
				var st domain.StreamID
				if r%3 == 0 {
					st = MustStream(t, name("shared", (a+r)%shared), "article/hot")
				} else {
					st = MustStream(t, name("u", a), name("article/t", r))
				}
				req, err := appendRetrying(t, s, st, r%2 == 0)
				if err != nil {
					t.Errorf("appender %d round %d: %v", a, r, err)
					return
				}
				mu.Lock()
				for _, e := range req.Events {
					ids[e.ID] = true
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	events := MustReadAll(t, s, domain.EventFilter{})
	checkCount(t, s, int64(len(ids)))
	versions := map[domain.StreamID]int64{}
	for _, e := range events {
		if !ids[e.ID] {
			t.Fatalf("event %s at %d was not appended by anyone", e.ID, e.Position)
		}
		delete(ids, e.ID)
		versions[e.Stream()]++
		if e.StreamVersion != versions[e.Stream()] {
			t.Fatalf("stream %s: version %d after %d", e.Stream(), e.StreamVersion, versions[e.Stream()]-1)
		}
	}
	for st, v := range versions {
		if snap := mustSnapshot(t, s, st); snap.Version != v {
			t.Fatalf("stream %s: snapshot at %d, log at %d", st, snap.Version, v)
		}
	}
}

// appendRetrying toggles kind like of st from its current snapshot,
// retrying version conflicts as the Ledger does.
func appendRetrying(t *testing.T, s domain.EventStore, st domain.StreamID, duplicateKind bool) (domain.AppendRequest, error) {
	like := MustKind(t, "like")
	for {
		snap, err := s.Snapshot(t.Context(), st)
		if err != nil {
			return domain.AppendRequest{}, err
		}
		req := request(t, st, snap.Version, "like", !snap.State.Active(like))
		if duplicateKind {
			e := event(t, st, snap.Version+2, "collect", true, domain.MustMetadata(map[string]string{"at": time.Now().String()}))
			req.Events = append(req.Events, e)
		}
		req.State = snap.State
		for _, e := range req.Events {
			req.State = domain.Evolve(req.State, e)
		}
		_, err = s.Append(t.Context(), req)
		if errors.Is(err, domain.ErrVersionConflict) {
			continue
		}
		return req, err
	}
}
