package bus_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/interactionledger/ledger/adapters/bus"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

// TestForwardGoChannel relays the store to an in-memory gochannel bus (in
// its ordered configuration) and consumes it with the projection handlers.
func TestForwardGoChannel(t *testing.T) {
	dir := t.TempDir()
	store := MustStore(t, filepath.Join(dir, "ledger.db"))
	s := MustSet(t, filepath.Join(dir, "views"), store)
	l := domain.NewLedger(store, kinds, domain.LedgerConfig{}, nil)
	m, u := newModel(), newUniverse()

	pubsub := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
	defer pubsub.Close()
	r, err := bus.NewRouter(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range s.Names() {
		r.AddConsumerHandler(bus.HandlerName(name), bus.DefaultTopic, pubsub, bus.ProjectionHandler(s, name))
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	<-r.Running() // gochannel drops what is published before subscribers exist

	ctx, cancel := context.WithCancel(context.Background())
	forwarded := make(chan error, 1)
	go func() { forwarded <- bus.Forward(ctx, store, pubsub, bus.ForwardConfig{BatchSize: 7}, nil) }()
	drive(t, l, m, u, 600, 3, func() {})
	waitApplied(t, s, store)
	check(t, s, store, m, u)

	cancel()
	if err := <-forwarded; err != nil {
		t.Fatalf("Forward after cancel: %v", err)
	}
	r.Close()
	<-done
	if err := s.Err(); err != nil {
		t.Fatalf("Err() after shutdown = %v", err)
	}
}

// TestFailureHoldsAndHeals corrupts a count behind the projection's
// back: the next cancellation would take it below zero. The counts
// projection must hold, say so once, keep its checkpoint before the event,
// and after the fix go on from there, without a restart of the pipeline
// and without counting anything twice.
func TestFailureHoldsAndHeals(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	views := filepath.Join(dir, "views")
	store := MustStore(t, filepath.Join(dir, "ledger.db"))
	statuses := make(chan projections.Status, 4)
	s, err := projections.Open(ctx, projections.Config{Path: views, Kinds: kinds,
		OnStatus: func(st projections.Status) { statuses <- st }}, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var mu sync.Mutex
	var announced []int64
	s.OnApplied(func(a projections.AppliedEvent) {
		mu.Lock()
		defer mu.Unlock()
		announced = append(announced, a.Event.Position, a.Counts["like"])
	})
	l := domain.NewLedger(store, kinds, domain.LedgerConfig{}, nil)
	p := MustRun(t, store, s)
	set(t, l, "u1", "article/a", "like", true)
	set(t, l, "u2", "article/a", "like", true)
	waitApplied(t, s, store)

	db := mustDB(t, views)
	exec(t, db, `UPDATE counts SET n = 0 WHERE target_id = 'a' AND kind = 'like'`)
	set(t, l, "u1", "article/a", "like", false) // position 3

	st := <-statuses
	if st.Projection != projections.Counts || !errors.Is(st.Err, projections.ErrNegativeCount) {
		t.Fatalf("status %+v", st)
	}
	if !errors.Is(s.Err(), projections.ErrFailed) {
		t.Fatalf("Err() = %v", s.Err())
	}
	if cp, _ := s.Checkpoint(ctx, projections.Counts); cp != 2 {
		t.Fatalf("counts checkpoint %d, want 2 (the failing event not skipped)", cp)
	}
	if err := s.WaitFor(ctx, 3); !errors.Is(err, projections.ErrFailed) {
		t.Fatalf("WaitFor = %v", err)
	}

	// The fix (a disk freed, a rebuild run beside the server): the
	// pipeline, still running, applies the held batch at its next try.
	exec(t, db, `UPDATE counts SET n = 2 WHERE target_id = 'a' AND kind = 'like'`)
	select {
	case st := <-statuses:
		if st.Err != nil || st.Applied != 3 {
			t.Fatalf("status after the fix %+v", st)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the projection did not go on after the fix")
	}
	if p.router.IsClosed() {
		t.Fatal("the pipeline stopped on the failure")
	}
	waitApplied(t, s, store)
	v, err := s.Target(ctx, mustParse(t, domain.ParseTarget, "article/a"), nil)
	if err != nil || v.Counts["like"] != 1 || s.Err() != nil {
		t.Fatalf("after resume: %+v %v %v", v, err, s.Err())
	}
	// Listeners hear of a batch after WaitFor's callers: wait for them.
	want := []int64{1, 1, 2, 2, 3, 1}
	got := func() []int64 {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(announced)
	}
	for deadline := time.Now().Add(5 * time.Second); len(got()) < len(want) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if !equal(got(), want) {
		t.Fatalf("announced %v, want %v", got(), want)
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func mustDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func exec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatal(err)
	}
}

// TestHandlerRedelivery: a source that starts again from an earlier
// position mid-batch (a broker's redelivery) must not make the handler
// apply a batch out of order or twice.
func TestHandlerRedelivery(t *testing.T) {
	ctx := context.Background()
	store := MustStore(t, "")
	l := domain.NewLedger(store, kinds, domain.LedgerConfig{}, nil)
	set(t, l, "u1", "article/a", "like", true)
	set(t, l, "u2", "article/a", "like", true)
	set(t, l, "u1", "article/a", "like", false)
	events, err := domain.AppendEvents(nil, store.ReadEvents(ctx, domain.EventFilter{}))
	if err != nil {
		t.Fatal(err)
	}
	s := MustSet(t, filepath.Join(t.TempDir(), "views"), nil)
	h := bus.ProjectionHandler(s, projections.Counts)
	for _, m := range []struct {
		i    int
		last bool
	}{{0, false}, {1, false}, {0, false}, {1, false}, {2, true}} {
		if err := h(bus.NewMessage(events[m.i], m.last)); err != nil {
			t.Fatal(err)
		}
	}
	v, err := s.Target(ctx, events[0].Target, nil)
	if err != nil || v.Counts["like"] != 1 || s.Err() != nil {
		t.Fatalf("%+v %v %v", v, err, s.Err())
	}
}

// TestOpenWithFailedProjection: a corrupt views file does not stop Open
// (so that `ledger rebuild` can repair it); the projection is reported
// failed, and a rebuild followed by a restart makes it run again.
func TestOpenWithFailedProjection(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	views := filepath.Join(dir, "views")
	store := MustStore(t, filepath.Join(dir, "ledger.db"))
	l := domain.NewLedger(store, kinds, domain.LedgerConfig{}, nil)
	set(t, l, "u1", "article/a", "like", true)
	s := MustSet(t, views, store)
	s.Close()
	exec(t, mustDB(t, views), `UPDATE counts SET n = 0`)
	set(t, l, "u1", "article/a", "like", false)

	s = MustSet(t, views, store)
	if !errors.Is(s.Err(), projections.ErrNegativeCount) {
		t.Fatalf("Err() = %v", s.Err())
	}
	if err := s.Rebuild(ctx, store, []string{projections.Counts}, nil); err != nil {
		t.Fatal(err)
	}
	if s.Err() == nil {
		t.Fatal("a rebuild cleared the failure of a stopped projection")
	}
	s.Close()
	s = MustSet(t, views, store)
	if r, err := s.Verify(ctx, store, t.TempDir()); err != nil || !r.OK() || s.Err() != nil {
		t.Fatalf("after rebuild and restart: %+v %v %v", r, err, s.Err())
	}
}

// TestBatchMessage: a message of AddProjections' subscription carries a
// whole read batch in its context, and no payload; ProjectionHandler
// applies it at once.
func TestBatchMessage(t *testing.T) {
	ctx := context.Background()
	store := MustStore(t, "")
	l := domain.NewLedger(store, kinds, domain.LedgerConfig{}, nil)
	for _, u := range []string{"u1", "u2", "u3"} {
		set(t, l, u, "article/a", "like", true)
	}
	events, err := domain.AppendEvents(nil, store.ReadEvents(ctx, domain.EventFilter{}))
	if err != nil || len(events) != 3 {
		t.Fatalf("read %d events: %v", len(events), err)
	}
	s := MustSet(t, filepath.Join(t.TempDir(), "views"), nil)
	msg := bus.BatchMessage(ctx, events)
	if len(msg.Payload) != 0 || msg.UUID != events[2].ID.String() || msg.Metadata.Get(bus.MetaPosition) != "3" ||
		msg.Metadata.Get(bus.MetaBatchLast) != "true" {
		t.Fatalf("batch message: payload %d bytes, UUID %s, metadata %v", len(msg.Payload), msg.UUID, msg.Metadata)
	}
	if err := bus.ProjectionHandler(s, s.Names()...)(msg); err != nil {
		t.Fatal(err)
	}
	v, err := s.Target(ctx, events[0].Target, nil)
	if err != nil || v.Counts["like"] != 3 || s.Applied() != 3 {
		t.Fatalf("after one batch message: %+v, applied %d, %v; want 3 likes at 3", v, s.Applied(), err)
	}
}

// StartProjections returns a running pipeline that applies what is
// written, and Close stops it (Stopped closed, nil error); a bad config
// is its error, with nothing left running.
func TestStartProjections(t *testing.T) {
	dir := t.TempDir()
	store := MustStore(t, filepath.Join(dir, "ledger.db"))
	s := MustSet(t, filepath.Join(dir, "views"), store)
	if _, err := bus.StartProjections(t.Context(), store, s, bus.SubscriberConfig{BatchSize: -1}, nil); err == nil {
		t.Fatal("StartProjections with BatchSize -1: no error")
	}
	p, err := bus.StartProjections(t.Context(), store, s, bus.SubscriberConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := domain.NewLedger(store, kinds, domain.LedgerConfig{}, nil)
	m, u := newModel(), newUniverse()
	drive(t, l, m, u, 50, 1, func() {})
	waitApplied(t, s, store)
	check(t, s, store, m, u)
	select {
	case <-p.Stopped():
		t.Fatal("Stopped closed while running")
	default:
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-p.Stopped():
	case <-time.After(5 * time.Second):
		t.Fatal("Stopped not closed after Close")
	}
}
