package projections_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/sqlite"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

// renamedAt is a log restored from an older copy that took, at position
// pos, an event like the one it held there (same user, target and kind)
// under another id: a user who liked the same article again after the
// restore. It keeps the log's identity.
type renamedAt struct {
	*sqlite.EventStore
	pos int64
	id  domain.Event // the event at pos as the restored log holds it
}

func newRenamedAt(tb testing.TB, store *sqlite.EventStore, pos int64) renamedAt {
	tb.Helper()
	e, err := domain.EventAt(context.Background(), store, pos)
	if err != nil || e.Position != pos {
		tb.Fatalf("event at %d: %v", pos, err)
	}
	e.ID = domain.NewEventID()
	return renamedAt{store, pos, e}
}

func (s renamedAt) ReadEvents(ctx context.Context, f domain.EventFilter) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		for e, err := range s.EventStore.ReadEvents(ctx, f) {
			if err == nil && e.Position == s.pos {
				e = s.id
			}
			if !yield(e, err) {
				return
			}
		}
	}
}

// openServing opens the views file at path as a server does.
func openServing(ctx context.Context, path string, store domain.EventReader) (*projections.Set, error) {
	return projections.Open(ctx, projections.Config{Path: path, Kinds: kinds, RebuildBehind: true}, store, nil)
}

// servingSet returns a log of 300 events and a set a server has opened
// over it (closed when the test ends).
func servingSet(t *testing.T) (*sqlite.EventStore, *projections.Set) {
	t.Helper()
	store := MustStore(t)
	MustGenerate(t, store, 300)
	s, err := openServing(context.Background(), filepath.Join(t.TempDir(), "v.views"), store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return store, s
}

// servedViews returns a log of 300 events and a views file a server has
// caught up with it and closed.
func servedViews(t *testing.T) (*sqlite.EventStore, string) {
	t.Helper()
	store := MustStore(t)
	MustGenerate(t, store, 300)
	path := filepath.Join(t.TempDir(), "v.views")
	s, err := openServing(context.Background(), path, store)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	return store, path
}

// toggleLate appends n toggles of one user's like of article/late.
func toggleLate(t *testing.T, store domain.EventStore, n int) {
	t.Helper()
	l := domain.NewLedger(store, kinds, domain.LedgerConfig{}, nil)
	for i := range n {
		req := domain.SetRequest{User: mustUser(t, "late"), Target: mustTarget(t, "article/late"), Kind: kinds.Kinds()[0], On: i%2 == 0}
		if _, err := l.Set(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOpenRefusesADivergedLogThatLooksAlike: a log restored from an older
// copy and grown again past a stopped node's views file was refused only
// when the event at the views file's last position differed in target or
// kind from the counts table's last row, so a hot target's next like
// matched by chance and the node applied the restored log's later events
// onto counts it no longer had. The checkpoints now keep the last applied
// event's id, and Open compares it.
func TestOpenRefusesADivergedLogThatLooksAlike(t *testing.T) {
	ctx := context.Background()
	store, path := servedViews(t)
	restored := newRenamedAt(t, store, 300)
	_, err := openServing(ctx, path, restored)
	if !errors.Is(err, projections.ErrDiverged) || !strings.Contains(err.Error(), "ledger rebuild") {
		t.Fatalf("views at 300 over a log holding another event at 300 with the same target and kind: %v, want ErrDiverged", err)
	}
	// Both ids are named: the log's event there has the same target and
	// kind, and alone they would read as the event applied.
	if !strings.Contains(err.Error(), restored.id.ID.String()) {
		t.Fatalf("the refusal does not name the log's event %s: %v", restored.id.ID, err)
	}
	s, err := openServing(ctx, path, store)
	if err != nil {
		t.Fatalf("the same views over the log they were built from: %v", err)
	}
	s.Close()
}

// TestApplyStopsWhereTheLogHoldsAnotherEvent: under a running server, a
// log restored from an older copy that grows past the server's position
// between two looks of WatchHead was followed blindly: its new events were
// applied onto counts the log no longer had. A batch that holds another
// event at the last applied position than the one applied there must stop
// the set, as WatchHead does, and apply nothing of it.
func TestApplyStopsWhereTheLogHoldsAnotherEvent(t *testing.T) {
	ctx := context.Background()
	store, s := servingSet(t)
	last, err := domain.EventAt(ctx, store, 300)
	if err != nil {
		t.Fatal(err)
	}
	next := last
	next.ID, next.Position, next.StreamVersion = domain.NewEventID(), 301, last.StreamVersion+1
	next.Type = opposite(last.Type)
	if err := s.ApplyAll(ctx, nil, []domain.Event{last, next}); err != nil || s.Applied() != 301 {
		t.Fatalf("a batch from the event applied at 300 on: %v, applied %d", err, s.Applied())
	}
	restored := next
	restored.ID = domain.NewEventID()
	after := next
	after.ID, after.Position, after.StreamVersion, after.Type = domain.NewEventID(), 302, next.StreamVersion+1, last.Type
	err = s.ApplyAll(ctx, nil, []domain.Event{restored, after})
	if !errors.Is(err, projections.ErrDiverged) || !errors.Is(err, projections.ErrFailed) || s.Applied() != 301 {
		t.Fatalf("a batch holding another event at 301: %v, applied %d; want ErrDiverged and nothing applied", err, s.Applied())
	}
	if err := s.Err(); !errors.Is(err, projections.ErrDiverged) || !strings.Contains(err.Error(), "restart") ||
		!strings.Contains(err.Error(), restored.ID.String()) {
		t.Fatalf("Err: %v, want ErrDiverged naming the log's event and the remedy", err)
	}
	if _, err := s.Target(ctx, last.Target, nil); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("a read once the log moved: %v, want ErrUnavailable", err)
	}
	if err := s.ApplyAll(ctx, nil, []domain.Event{next, after}); !errors.Is(err, projections.ErrFailed) || s.Applied() != 301 {
		t.Fatalf("a later batch once stopped: %v, applied %d; want ErrFailed", err, s.Applied())
	}
}

func opposite(t domain.EventType) domain.EventType {
	if t == domain.EventAdded {
		return domain.EventCancelled
	}
	return domain.EventAdded
}

// TestOldViewsFileGetsEventColumns: a views file made before checkpoints
// kept the last applied event opens, gains the columns, is still checked
// by its counts table until its next batch names an event, and then by
// that event.
func TestOldViewsFileGetsEventColumns(t *testing.T) {
	ctx := context.Background()
	store, path := servedViews(t)
	makeOld(t, path)
	// Unmarked, a look-alike event at 300 is not seen: the counts table's
	// last row is all there is to compare.
	s, err := openServing(ctx, path, newRenamedAt(t, store, 300))
	if err != nil {
		t.Fatalf("an old views file over a look-alike log: %v", err)
	}
	s.Close()
	// The next batch marks the checkpoints.
	toggleLate(t, store, 10)
	s, err = openServing(ctx, path, store)
	if err != nil || s.Applied() != 310 {
		t.Fatalf("an old views file over its own log: %v", err)
	}
	s.Close()
	if _, err = openServing(ctx, path, newRenamedAt(t, store, 310)); !errors.Is(err, projections.ErrDiverged) {
		t.Fatalf("after a batch, over a look-alike log: %v, want ErrDiverged", err)
	}
}

// makeOld gives the closed views file at path the checkpoints table of a
// ledger from before checkpoints kept the last applied event.
func makeOld(tb testing.TB, path string) {
	tb.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		tb.Fatal(err)
	}
	_, err = db.Exec(`
CREATE TABLE old_checkpoints (projection TEXT PRIMARY KEY, position INTEGER NOT NULL, version INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO old_checkpoints SELECT projection, position, version FROM checkpoints;
DROP TABLE checkpoints;
ALTER TABLE old_checkpoints RENAME TO checkpoints;`)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		tb.Fatal(err)
	}
}

// immutable makes path read-only for every process, root's too (the ext4
// immutable attribute), until the test ends; the test is skipped where
// that cannot be set (another file system, no root).
func immutable(tb testing.TB, path string) {
	tb.Helper()
	if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
		tb.Skipf("chattr +i %s (needs root on ext4): %v: %s", path, err, out)
	}
	tb.Cleanup(func() {
		if out, err := exec.Command("chattr", "-i", path).CombinedOutput(); err != nil {
			tb.Errorf("chattr -i %s: %v: %s", path, err, out)
		}
	})
}

// TestReadOnlyOldViewsFileIsRead: a views file of an older ledger that the
// process may not write (an operator made it read-only to inspect it) was
// read by stats and verify, and was refused by them once opening it added
// the checkpoints' event columns ("attempt to write a readonly
// database"). It must still be read, its checkpoints naming no event; a
// server still refuses it for being read-only.
func TestReadOnlyOldViewsFileIsRead(t *testing.T) {
	ctx := context.Background()
	store, path := servedViews(t)
	makeOld(t, path)
	immutable(t, path)
	s, err := projections.Open(ctx, projections.Config{Path: path, Kinds: kinds, MemoryRows: -1}, nil, nil)
	if err != nil {
		t.Fatalf("a read-only views file of an older ledger, opened as stats and verify do: %v", err)
	}
	defer s.Close()
	if cp, err := s.LowestCheckpoint(ctx); err != nil || cp != 300 {
		t.Fatalf("checkpoint: %d, %v; want 300", cp, err)
	}
	r, err := s.Verify(ctx, store, t.TempDir())
	if err != nil || !r.OK() {
		t.Fatalf("verify: %v, %+v", err, r)
	}
	if _, err := openServing(ctx, path, store); err == nil || !strings.Contains(err.Error(), "is read-only") {
		t.Fatalf("a server on it: %v, want the read-only refusal", err)
	}
}

// TestOldViewsFileOpenedByTwo: two processes opening a views file of an
// older ledger at once (a server and a rebuild started together) both
// found the event columns missing and both added them, one statement at a
// time: the second failed with "duplicate column name", and a process
// stopped between the two statements left a file with one column, which
// every later open tried to add again and failed on, `ledger rebuild`'s
// too. The columns are added in one transaction, after a look at them
// inside it.
func TestOldViewsFileOpenedByTwo(t *testing.T) {
	ctx := context.Background()
	store := MustStore(t)
	MustGenerate(t, store, 30)
	dir := t.TempDir()
	for round := range 20 {
		path := filepath.Join(dir, fmt.Sprintf("v%d.views", round))
		s, err := openServing(ctx, path, store)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		makeOld(t, path)
		errs := make(chan error, 2)
		for range 2 {
			go func() {
				s, err := projections.Open(ctx, projections.Config{Path: path, Kinds: kinds, MemoryRows: -1}, nil, nil)
				if err == nil {
					s.Close()
				}
				errs <- err
			}()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: an old views file opened by two at once: %v", round, err)
			}
		}
	}
	// One column added, the other not: a process stopped between them.
	path := filepath.Join(dir, "half.views")
	s, err := openServing(ctx, path, store)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	makeOld(t, path)
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`ALTER TABLE checkpoints ADD COLUMN event_position INTEGER`)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		s, err = openServing(ctx, path, store)
		if err != nil {
			t.Fatalf("open %d of a views file with event_position and no event_id: %v", i+1, err)
		}
		s.Close()
	}
}

// TestOlderLedgersWriteLeavesNoFalseMark: an older ledger moves a
// checkpoint row's position and version and keeps its event columns, so
// after its rebuild (run on a log restored from an older copy, or on a log
// made anew) the row named an event of the tables it replaced. The next
// server refused the rebuilt file with ErrDiverged, naming the remedy
// that had just been applied. A row whose event position is not its
// position names no event.
func TestOlderLedgersWriteLeavesNoFalseMark(t *testing.T) {
	ctx := context.Background()
	store, path := servedViews(t)
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var at int64
	var id []byte
	if err := db.QueryRow(`SELECT event_position, event_id FROM checkpoints WHERE projection = 'counts'`).Scan(&at, &id); err != nil || at != 300 {
		t.Fatalf("counts' mark: %d, %v", at, err)
	}
	// The log restored from an older copy holds another event at 300 and
	// grows past it.
	toggleLate(t, store, 10)
	restored := newRenamedAt(t, store, 300)
	if _, err := openServing(ctx, path, restored); !errors.Is(err, projections.ErrDiverged) {
		t.Fatalf("before the rebuild: %v, want ErrDiverged", err)
	}
	// An older ledger's rebuild: the tables and positions of the restored
	// log, the event columns as they were.
	s, err := projections.Open(ctx, projections.Config{Path: path, Kinds: kinds, MemoryRows: -1}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Rebuild(ctx, restored, nil, nil)
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE checkpoints SET event_position = ?, event_id = ?`, at, id); err != nil {
		t.Fatal(err)
	}
	s, err = openServing(ctx, path, restored)
	if err != nil || s.Applied() != 310 {
		t.Fatalf("a views file an older ledger rebuilt from this log: %v", err)
	}
	s.Close()
}

// TestWatchHeadStopsALogRegrownToItsPosition: a log restored from an older
// copy under a running server that grew back to exactly the server's
// position before WatchHead looked (a node's writes queued behind the
// restore commit at once) was never seen: the head was not behind, and
// no batch came past the position to be checked, so the server answered
// the old log's counts as current, ready, until some later write. Each
// look now compares the log's event at the last applied position with the
// one applied there.
func TestWatchHeadStopsALogRegrownToItsPosition(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, s := servingSet(t)
	go s.WatchHead(ctx, store, 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	if err := s.Err(); err != nil {
		t.Fatalf("Err over the log the views were built from: %v", err)
	}
	restored := newRenamedAt(t, store, 300)
	go s.WatchHead(ctx, restored, 10*time.Millisecond)
	for deadline := time.Now().Add(5 * time.Second); s.Err() == nil && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Err(); !errors.Is(err, projections.ErrDiverged) || !strings.Contains(err.Error(), "ledger rebuild") {
		t.Fatalf("Err with another event at 300, the position applied: %v, want ErrDiverged naming the remedy", err)
	}
	if _, err := s.Target(ctx, restored.id.Target, nil); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("a read once the log moved: %v, want ErrUnavailable", err)
	}
}

// TestAppendingStopsAtAPositionApplied: an append of this process that
// takes a position the set has applied (a log restored under it) stops the
// set at once, before the writer reads its counts; one past it does not.
func TestAppendingStopsAtAPositionApplied(t *testing.T) {
	ctx := context.Background()
	_, s := servingSet(t)
	s.Appending()(ctx, 301)
	if err := s.Err(); err != nil {
		t.Fatalf("Err after an append at 301 with 300 applied: %v", err)
	}
	appended := s.Appending()
	appended(ctx, 298)
	if err := s.Err(); !errors.Is(err, projections.ErrLogBehind) || !strings.Contains(err.Error(), "ledger rebuild") {
		t.Fatalf("Err after an append at 298 with 300 applied: %v, want ErrLogBehind naming the remedy", err)
	}
	if _, err := s.Target(ctx, mustTarget(t, "article/a1"), nil); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("a read once the log moved: %v, want ErrUnavailable", err)
	}
}

// TestTailsBatchAnnouncesNoAppliedEvent: the bus tail's batch starts with
// the event at the position the set applied, for checkEvent. A set opened
// on a views file applied up to 300 (a server's restart) announced that
// event to its OnApplied listeners with the first batch, as if applied
// then: the live stream's hub was handed it again and the apply-lag
// histogram got the age of an event applied before the restart.
func TestTailsBatchAnnouncesNoAppliedEvent(t *testing.T) {
	ctx := context.Background()
	store, path := servedViews(t)
	s, err := openServing(ctx, path, store)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []int64
	s.OnApplied(func(a projections.AppliedEvent) { got = append(got, a.Event.Position) })
	toggleLate(t, store, 1)
	batch, err := domain.AppendEvents(nil, store.ReadEvents(ctx, domain.EventFilter{After: 299}))
	if err != nil || len(batch) != 2 {
		t.Fatalf("the tail's batch: %d events, %v", len(batch), err)
	}
	if err := s.ApplyAll(ctx, nil, batch); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[301]" {
		t.Fatalf("announced %v, want [301]: 300 was applied before", got)
	}
}
