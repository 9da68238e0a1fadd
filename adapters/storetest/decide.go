package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/interactionledger/ledger/domain"
)

// RunDecide runs the DecidingStore contract suite against the stores open
// returns, which must implement domain.DecidingStore.
func RunDecide(t *testing.T, open Opener) {
	fresh := func(t *testing.T) deciding {
		t.Helper()
		s := open(t, filepath.Join(t.TempDir(), "ledger.db"))
		ds, ok := s.(deciding)
		if !ok {
			t.Fatalf("%T does not decide where it appends", s)
		}
		return ds
	}
	t.Run("Toggle", func(t *testing.T) { testDecideToggle(t, fresh(t)) })
	t.Run("ExpectedVersion", func(t *testing.T) { testDecideExpected(t, fresh(t)) })
	t.Run("Idempotency", func(t *testing.T) { testDecideIdempotency(t, fresh(t)) })
	t.Run("KeyBeforeVersion", func(t *testing.T) { testDecideKeyBeforeVersion(t, fresh(t)) })
	t.Run("Refused", func(t *testing.T) { testDecideRefused(t, fresh(t)) })
	t.Run("Concurrent", func(t *testing.T) { testDecideConcurrent(t, fresh(t)) })
	t.Run("Queued", func(t *testing.T) { testDecideQueued(t, fresh(t)) })
	t.Run("Follows", func(t *testing.T) { testDecideFollows(t, fresh(t)) })
}

type deciding interface {
	domain.EventStore
	domain.DecidingStore
}

// Command returns a command turning kind on or off for stream, with a
// fresh event id.
func Command(tb testing.TB, stream domain.StreamID, kind string, on bool) domain.Command {
	tb.Helper()
	return domain.Command{Stream: stream, Kind: MustKind(tb, kind), On: on,
		OccurredAt: nextTime(), EventID: domain.NewEventID()}
}

// MustDecide decides req or fails tb.
func MustDecide(tb testing.TB, s domain.DecidingStore, req domain.DecideRequest) domain.Outcome {
	tb.Helper()
	out, err := s.Decide(tb.Context(), req)
	if err != nil {
		tb.Fatalf("decide %s %s on=%t: %v", req.Command.Stream, req.Command.Kind, req.Command.On, err)
	}
	return out
}

func checkOutcome(tb testing.TB, what string, got domain.Outcome, changed, active bool, state string, version, position int64) {
	tb.Helper()
	if got.Changed != changed || got.Active != active || got.State.String() != state ||
		got.StreamVersion != version || got.Position != position {
		tb.Fatalf("%s: outcome %+v, want changed %t, active %t, state %q, version %d, position %d",
			what, got, changed, active, state, version, position)
	}
}

// testDecideToggle: a command is decided against the stream as stored:
// the first like appends at version 1, a second changes nothing (the
// stream's last position), an unlike appends a cancellation; the log holds
// the events with the commands' ids and the snapshot follows.
func testDecideToggle(t *testing.T, s deciding) {
	MustAppend(t, s, request(t, MustStream(t, "bob", "video/v1"), 0, "like", true))
	st := MustStream(t, "alice", "article/a1")
	like := Command(t, st, "like", true)
	checkOutcome(t, "first like", MustDecide(t, s, domain.DecideRequest{Command: like}), true, true, "like", 1, 2)
	checkOutcome(t, "second like", MustDecide(t, s, domain.DecideRequest{Command: Command(t, st, "like", true)}),
		false, true, "like", 1, 2)
	checkOutcome(t, "collect", MustDecide(t, s, domain.DecideRequest{Command: Command(t, st, "collect", true)}),
		true, true, "collect,like", 2, 3)
	unlike := Command(t, st, "like", false)
	checkOutcome(t, "unlike", MustDecide(t, s, domain.DecideRequest{Command: unlike}), true, false, "collect", 3, 4)
	checkOutcome(t, "unlike again", MustDecide(t, s, domain.DecideRequest{Command: Command(t, st, "like", false)}),
		false, false, "collect", 3, 4)
	checkOutcome(t, "unlike of a new stream", MustDecide(t, s, domain.DecideRequest{
		Command: Command(t, MustStream(t, "carol", "article/a1"), "like", false)}), false, false, "", 0, 0)
	checkCount(t, s, 4)
	events := MustReadAll(t, s, domain.EventFilter{User: st.User})
	if len(events) != 3 || events[0].ID != like.EventID || events[0].Type != domain.EventAdded ||
		events[2].ID != unlike.EventID || events[2].Type != domain.EventCancelled || events[2].StreamVersion != 3 {
		t.Fatalf("alice's events %+v, want the like's and the unlike's ids at versions 1 and 3", events)
	}
	if snap := mustSnapshot(t, s, st); snap.Version != 3 || snap.LastPosition != 4 || snap.State.String() != "collect" {
		t.Fatalf("snapshot %+v, want version 3 at position 4, collect on", snap)
	}
}

// testDecideQueued: commands queued without waiting (QueueDecide) are
// decided and appended in the order queued, several of one stream in
// flight among them, so positions follow that order; one at a stale
// expected version fails alone with ErrPreconditionFailed, and one with a
// stored event id alone with ErrDuplicateEvent.
func testDecideQueued(t *testing.T, s deciding) {
	qs, ok := s.(domain.QueueingStore)
	if !ok {
		t.Fatalf("%T does not queue decided commands", s)
	}
	var cmds []domain.Command
	var waits []domain.Queued
	queue := func(c domain.Command, expected *int64) {
		w := mustQueue(t, qs, domain.DecideRequest{Command: c, ExpectedVersion: expected})
		cmds, waits = append(cmds, c), append(waits, w)
	}
	for i := range 40 { // ten streams, each liked, unliked, liked and unliked
		queue(Command(t, MustStream(t, name("u", i%10), "article/a1"), "like", i/10%2 == 0), nil)
	}
	stale := int64(1)
	queue(Command(t, MustStream(t, "u0", "article/a1"), "collect", true), &stale)
	dup := Command(t, MustStream(t, "v1", "article/a1"), "like", true)
	dup.EventID = cmds[0].EventID
	queue(dup, nil)
	var last int64
	for i, w := range waits[:40] {
		out, err := w.Wait()
		if err != nil || !out.Changed || out.Position <= last || out.StreamVersion != int64(i/10+1) {
			t.Fatalf("command %d: %+v %v, want it appended at version %d after position %d", i, out, err, i/10+1, last)
		}
		last = out.Position
	}
	if _, err := waits[40].Wait(); !errors.Is(err, domain.ErrPreconditionFailed) {
		t.Errorf("at a stale version: %v, want ErrPreconditionFailed", err)
	}
	if _, err := waits[41].Wait(); !errors.Is(err, domain.ErrDuplicateEvent) {
		t.Errorf("a stored event id: %v, want ErrDuplicateEvent", err)
	}
	events := MustReadAll(t, s, domain.EventFilter{})
	if len(events) != 40 {
		t.Fatalf("%d events, want the 40 decided", len(events))
	}
	for i, e := range events {
		if e.ID != cmds[i].EventID {
			t.Fatalf("position %d holds %s, want queued command %d's event %s", e.Position, e.ID, i, cmds[i].EventID)
		}
	}
}

// mustQueue queues req in qs.
func mustQueue(t *testing.T, qs domain.QueueingStore, req domain.DecideRequest) domain.Queued {
	t.Helper()
	q, err := qs.QueueDecide(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// testDecideFollows: a command queued to follow another (Follows) is
// decided only when that one appended its event, in the same commit or an
// earlier one, or whose event was stored before (an import run again):
// behind one refused (its stream held another writer's event) it fails
// with ErrFollowedNotAppended, though the stream is at its expected
// version and the command would change it; a command of another store or
// stream cannot be followed.
func testDecideFollows(t *testing.T, s deciding) {
	qs := s.(domain.QueueingStore)
	queue := func(c domain.Command, expected int64, follows domain.Queued) domain.Queued {
		t.Helper()
		return mustQueue(t, qs, domain.DecideRequest{Command: c, ExpectedVersion: &expected, Follows: follows})
	}
	live, chain, later := MustStream(t, "live", "article/a1"), MustStream(t, "chain", "article/a1"), MustStream(t, "later", "article/a1")
	MustDecide(t, s, domain.DecideRequest{Command: Command(t, live, "like", true)})
	refused := queue(Command(t, live, "like", true), 0, nil)
	behind := queue(Command(t, live, "like", false), 1, refused)
	var links []domain.Queued
	for i := range 4 {
		var prev domain.Queued
		if i > 0 {
			prev = links[i-1]
		}
		links = append(links, queue(Command(t, chain, "like", i%2 == 0), int64(i), prev))
	}
	if _, err := refused.Wait(); !errors.Is(err, domain.ErrPreconditionFailed) {
		t.Fatalf("at a stale version: %v, want ErrPreconditionFailed", err)
	}
	if out, err := behind.Wait(); !errors.Is(err, domain.ErrFollowedNotAppended) || !errors.Is(err, domain.ErrPreconditionFailed) {
		t.Fatalf("behind a refused command: %+v %v, want ErrFollowedNotAppended", out, err)
	}
	for i, q := range links {
		if out, err := q.Wait(); err != nil || !out.Changed || out.StreamVersion != int64(i+1) {
			t.Fatalf("link %d: %+v %v, want it appended at version %d", i, out, err, i+1)
		}
	}
	// Across commits: the one followed was answered before this was queued.
	if out, err := queue(Command(t, live, "like", false), 1, refused).Wait(); !errors.Is(err, domain.ErrFollowedNotAppended) {
		t.Fatalf("behind a command refused in an earlier commit: %+v %v, want ErrFollowedNotAppended", out, err)
	}
	if out, err := queue(Command(t, chain, "collect", true), 4, links[3]).Wait(); err != nil || !out.Changed {
		t.Fatalf("behind a command appended in an earlier commit: %+v %v, want it appended", out, err)
	}
	// Run again: the one followed is refused, its event stored before;
	// then refused in an earlier commit.
	for i, wait := range []bool{false, true} {
		st := MustStream(t, name("rerun", i), "article/a1")
		again := Command(t, st, "like", true)
		MustDecide(t, s, domain.DecideRequest{Command: again})
		refused := queue(again, 0, nil)
		if wait {
			if _, err := refused.Wait(); !errors.Is(err, domain.ErrPreconditionFailed) {
				t.Fatalf("run again: %v, want ErrPreconditionFailed", err)
			}
		}
		if out, err := queue(Command(t, st, "like", false), 1, refused).Wait(); err != nil || !out.Changed {
			t.Fatalf("behind a command whose event was stored before (waited for: %t): %+v %v, want it appended", wait, out, err)
		}
	}
	foreign := domain.Answered(domain.Outcome{Changed: true}, nil)
	for name, follows := range map[string]domain.Queued{"AnotherStore": foreign, "AnotherStream": links[0]} {
		if _, err := qs.QueueDecide(t.Context(), domain.DecideRequest{Command: Command(t, later, "like", true), Follows: follows}); err == nil {
			t.Fatalf("%s: a command following one this store did not queue for its stream was queued", name)
		}
	}
	if n := len(MustReadAll(t, s, domain.EventFilter{})); n != 10 {
		t.Fatalf("%d events, want 10: the live like, the chain's 4 and its collect, the reruns' 2 each", n)
	}
}

// testDecideExpected: an expected version other than the stream's fails
// with ErrPreconditionFailed, a *domain.StaleVersionError naming the stream
// as the store found it, and writes nothing; the right one decides.
func testDecideExpected(t *testing.T, s deciding) {
	st := MustStream(t, "alice", "article/a1")
	zero, one := int64(0), int64(1)
	first := MustDecide(t, s, domain.DecideRequest{Command: Command(t, st, "like", true), ExpectedVersion: &zero})
	for _, on := range []bool{true, false} {
		_, err := s.Decide(t.Context(), domain.DecideRequest{Command: Command(t, st, "like", on), ExpectedVersion: &zero})
		if !errors.Is(err, domain.ErrPreconditionFailed) {
			t.Fatalf("on=%t at a stale version: %v, want ErrPreconditionFailed", on, err)
		}
		var stale *domain.StaleVersionError
		if !errors.As(err, &stale) || stale.Expected != 0 || stale.Stream.Version != 1 || stale.Stream.LastPosition != first.Position {
			t.Fatalf("on=%t at a stale version: %#v, want the stream at version 1, position %d", on, err, first.Position)
		}
	}
	checkCount(t, s, 1)
	checkOutcome(t, "unlike at version 1", MustDecide(t, s, domain.DecideRequest{
		Command: Command(t, st, "like", false), ExpectedVersion: &one}), true, false, "", 2, 2)
}

// testDecideIdempotency: the record of a decided command holds its
// outcome, with the appended event's position, or the stream's last one
// when it changed nothing; a recorded key is ErrIdempotencyKeyTaken and
// writes nothing.
func testDecideIdempotency(t *testing.T, s deciding) {
	st := MustStream(t, "alice", "article/a1")
	MustAppend(t, s, request(t, MustStream(t, "bob", "video/v1"), 0, "like", true))
	record := func(key string) *domain.IdempotencyRecord {
		return &domain.IdempotencyRecord{User: st.User, Key: key, RequestHash: "hash-" + key}
	}
	check := func(key string, changed bool, position int64) {
		t.Helper()
		got, ok, err := s.Idempotency(t.Context(), st.User, key)
		if err != nil || !ok {
			t.Fatalf("record %s: %t, %v", key, ok, err)
		}
		want := domain.IdempotencyRecord{User: st.User, Key: key, RequestHash: "hash-" + key, Outcome: domain.Outcome{
			Changed: changed, Active: true, State: domain.State{}.With(MustKind(t, "like"), true), StreamVersion: 1, Position: position}}
		checkRecord(t, got, want)
	}
	out := MustDecide(t, s, domain.DecideRequest{Command: Command(t, st, "like", true), Idempotency: record("k1")})
	checkOutcome(t, "like with a key", out, true, true, "like", 1, 2)
	check("k1", true, 2)
	out = MustDecide(t, s, domain.DecideRequest{Command: Command(t, st, "like", true), Idempotency: record("k2")})
	checkOutcome(t, "second like with a key", out, false, true, "like", 1, 2)
	check("k2", false, 2)
	_, err := s.Decide(t.Context(), domain.DecideRequest{Command: Command(t, st, "like", false), Idempotency: record("k1")})
	if !errors.Is(err, domain.ErrIdempotencyKeyTaken) {
		t.Fatalf("unlike with a recorded key: %v, want ErrIdempotencyKeyTaken", err)
	}
	checkCount(t, s, 2)
}

// testDecideKeyBeforeVersion: a request with an expected version and a
// key that another request with the same key (a retry on another node)
// recorded while moving the stream past that version is
// ErrIdempotencyKeyTaken, which Ledger.Set answers with the recorded
// outcome, not ErrPreconditionFailed; it writes nothing.
func testDecideKeyBeforeVersion(t *testing.T, s deciding) {
	st := MustStream(t, "alice", "article/a1")
	zero := int64(0)
	req := func() domain.DecideRequest {
		return domain.DecideRequest{Command: Command(t, st, "like", true), ExpectedVersion: &zero,
			Idempotency: &domain.IdempotencyRecord{User: st.User, Key: "k1", RequestHash: "hash-k1"}}
	}
	checkOutcome(t, "like at version 0 with a key", MustDecide(t, s, req()), true, true, "like", 1, 1)
	if _, err := s.Decide(t.Context(), req()); !errors.Is(err, domain.ErrIdempotencyKeyTaken) {
		t.Fatalf("the same request again, its key recorded and the stream moved past its version: %v, want ErrIdempotencyKeyTaken", err)
	}
	checkCount(t, s, 1)
}

// testDecideRefused: a command without an event id or with a bad expected
// version is invalid input, and one whose event id is stored is
// ErrDuplicateEvent; none writes anything, not even a new stream's row.
func testDecideRefused(t *testing.T, s deciding) {
	st := MustStream(t, "alice", "article/a1")
	first := MustDecide(t, s, domain.DecideRequest{Command: Command(t, st, "like", true)})
	noID := Command(t, st, "like", false)
	noID.EventID = [16]byte{}
	negative := int64(-1)
	for name, req := range map[string]domain.DecideRequest{
		"no event id":      {Command: noID},
		"negative version": {Command: Command(t, st, "like", false), ExpectedVersion: &negative},
		"no kind":          {Command: domain.Command{Stream: st, On: true, OccurredAt: nextTime(), EventID: domain.NewEventID()}},
	} {
		if _, err := s.Decide(t.Context(), req); !errors.Is(err, domain.ErrInvalidInput) {
			t.Errorf("%s: %v, want ErrInvalidInput", name, err)
		}
	}
	other := MustStream(t, "bob", "article/a1")
	dup := Command(t, other, "like", true)
	dup.EventID = MustReadAll(t, s, domain.EventFilter{})[0].ID
	if _, err := s.Decide(t.Context(), domain.DecideRequest{Command: dup}); !errors.Is(err, domain.ErrDuplicateEvent) {
		t.Fatalf("a stored event id: %v, want ErrDuplicateEvent", err)
	}
	if snap := mustSnapshot(t, s, other); snap.Version != 0 {
		t.Fatalf("the refused command left its new stream at %+v", snap)
	}
	checkCount(t, s, first.Position)
	checkOutcome(t, "like of the refused stream", MustDecide(t, s, domain.DecideRequest{Command: Command(t, other, "like", true)}),
		true, true, "like", 1, 2)
}

// testDecideConcurrent: goroutines toggling one stream at random, without
// the Ledger's lock, are decided one after another: no conflict, every
// changed outcome is one event of the log at consecutive versions, and
// each outcome is the state its command leaves.
func testDecideConcurrent(t *testing.T, s deciding) {
	st := MustStream(t, "alice", "article/a1")
	const workers, each = 8, 25
	var mu sync.Mutex
	changed := map[int64]domain.Outcome{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range each {
				on := rng.IntN(2) == 0
				out, err := s.Decide(t.Context(), domain.DecideRequest{Command: Command(t, st, "like", on)})
				if err != nil {
					t.Errorf("decide: %v", err)
					return
				}
				if out.Active != on {
					t.Errorf("on=%t answered active %t", on, out.Active)
				}
				if out.Changed {
					mu.Lock()
					changed[out.Position] = out
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	events := MustReadAll(t, s, domain.EventFilter{})
	if len(events) != len(changed) {
		t.Fatalf("%d events for %d changed outcomes", len(events), len(changed))
	}
	for i, e := range events {
		out, ok := changed[e.Position]
		if !ok || e.StreamVersion != int64(i)+1 || out.StreamVersion != e.StreamVersion || out.Active != e.On() {
			t.Fatalf("event %d (version %d, on %t) against outcome %+v", e.Position, e.StreamVersion, e.On(), out)
		}
		if i > 0 && e.On() == events[i-1].On() {
			t.Fatalf("events %d and %d both turn like %s", events[i-1].Position, e.Position, map[bool]string{true: "on", false: "off"}[e.On()])
		}
	}
}

// CheckDecideReadOnly checks Decide on ro, a store opened read-only on the
// log that w writes: a command that changes nothing is answered from the
// stream's snapshot, one that would write is refused with ErrUnavailable,
// and a malformed one is ErrInvalidInput, as on a writable store.
func CheckDecideReadOnly(t *testing.T, w, ro domain.DecidingStore) {
	t.Helper()
	st := MustStream(t, "alice", "article/a1")
	liked := MustDecide(t, w, domain.DecideRequest{Command: Command(t, st, "like", true)})
	checkOutcome(t, "a like the log holds, read-only", MustDecide(t, ro, domain.DecideRequest{Command: Command(t, st, "like", true)}),
		false, true, "like", 1, liked.Position)
	if _, err := ro.Decide(t.Context(), domain.DecideRequest{Command: Command(t, st, "like", false)}); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("an unlike on a read-only store: %v, want ErrUnavailable", err)
	}
	noID := Command(t, st, "like", true)
	noID.EventID = [16]byte{}
	negative := int64(-1)
	for name, req := range map[string]domain.DecideRequest{
		"no event id":      {Command: noID},
		"negative version": {Command: Command(t, st, "like", true), ExpectedVersion: &negative},
	} {
		if _, err := ro.Decide(t.Context(), req); !errors.Is(err, domain.ErrInvalidInput) {
			t.Errorf("%s on a read-only store: %v, want ErrInvalidInput", name, err)
		}
	}
}

// CheckFailureRunSpansNoOps checks how s logs (into logs, slog's text
// form) a run of failed group commits between which commands that change
// nothing commit: such a commit writes no row, so it commits while every
// write fails. After fail, three writes fail with a no-op after each; they
// must be one run of failures, logged once and not ended by the no-ops
// ("group commit works again" logged between them made an error line per
// failure); after heal the next write ends the run, naming all 3.
func CheckFailureRunSpansNoOps(t *testing.T, s domain.DecidingStore, logs fmt.Stringer, fail, heal func()) {
	t.Helper()
	liked := MustStream(t, "alice", "article/a1")
	like := func(st domain.StreamID) (domain.Outcome, error) {
		return s.Decide(t.Context(), domain.DecideRequest{Command: Command(t, st, "like", true)})
	}
	MustDecide(t, s, domain.DecideRequest{Command: Command(t, liked, "like", true)})
	fail()
	for i := range 3 {
		if _, err := like(MustStream(t, name("u", i), "article/a1")); err == nil {
			t.Fatal("a write succeeded while writes fail")
		}
		if out, err := like(liked); err != nil || out.Changed {
			t.Fatalf("a like of a liked stream while writes fail: %+v, %v; want no change", out, err)
		}
	}
	if n := strings.Count(logs.String(), `msg="group commit failed"`); n != 1 || strings.Contains(logs.String(), "works again") {
		t.Fatalf("3 failed writes between no-ops logged %d runs of failures:\n%s", n, logs)
	}
	heal()
	MustDecide(t, s, domain.DecideRequest{Command: Command(t, MustStream(t, "bob", "article/a1"), "like", true)})
	if !strings.Contains(logs.String(), `msg="group commit works again" failed_in_all=3`) {
		t.Fatalf("the write after the fault ended did not end the run of 3 failures:\n%s", logs)
	}
}

// CheckBadStoredStateReads checks the reads of a stream snapshot and an
// idempotency record whose stored state does not decode (corrupt is
// called after a keyed like of alice's article/a1 to make both so): each
// is the log's fault, ErrUnavailable naming the stored state, never
// ErrInvalidInput, which a server answers 400 as if the client had sent
// it.
func CheckBadStoredStateReads(t *testing.T, s deciding, corrupt func()) {
	t.Helper()
	st := MustStream(t, "alice", "article/a1")
	MustDecide(t, s, domain.DecideRequest{Command: Command(t, st, "like", true),
		Idempotency: &domain.IdempotencyRecord{User: st.User, Key: "k-1", RequestHash: "h"}})
	corrupt()
	_, err := s.Snapshot(t.Context(), st)
	checkStoredStateError(t, "the snapshot", err)
	_, _, err = s.Idempotency(t.Context(), st.User, "k-1")
	checkStoredStateError(t, "the idempotency record", err)
}

func checkStoredStateError(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, domain.ErrUnavailable) || errors.Is(err, domain.ErrInvalidInput) || !strings.Contains(err.Error(), "stored state") {
		t.Fatalf("%s with a stored state that does not decode: %v, want ErrUnavailable naming the stored state, not invalid input", what, err)
	}
}
