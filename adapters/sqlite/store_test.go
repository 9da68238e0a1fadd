package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/interactionledger/ledger/adapters/sqlite/sqlitetest"
	"github.com/interactionledger/ledger/adapters/storetest"
	"github.com/interactionledger/ledger/domain"
)

// MustOpen opens a store on path or fails tb; it is closed at cleanup.
func MustOpen(tb testing.TB, cfg Config) *EventStore {
	tb.Helper()
	s, err := Open(tb.Context(), cfg, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Error(err)
		}
	})
	return s
}

func TestContract(t *testing.T) {
	t.Run("Default", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T, path string) domain.EventStore {
			return MustOpen(t, Config{Path: path})
		})
	})
	t.Run("Decide", func(t *testing.T) {
		storetest.RunDecide(t, func(t *testing.T, path string) domain.EventStore {
			return MustOpen(t, Config{Path: path})
		})
	})
	// Small batches exercise batch boundaries; no linger, the other path.
	t.Run("SmallBatches", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T, path string) domain.EventStore {
			return MustOpen(t, Config{Path: path, MaxBatch: 3, MaxDelay: -1, Synchronous: "NORMAL"})
		})
		storetest.RunDecide(t, func(t *testing.T, path string) domain.EventStore {
			return MustOpen(t, Config{Path: path, MaxBatch: 3, MaxDelay: -1, Synchronous: "NORMAL"})
		})
	})
}

func TestConfigValidate(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		for _, c := range []Config{{Path: "x.db"}, {Path: "x.db", Synchronous: "NORMAL", MaxBatch: 1, MaxDelay: -1}} {
			if err := c.Validate(); err != nil {
				t.Errorf("%+v: %v", c, err)
			}
		}
	})
	t.Run("ErrInvalidInput", func(t *testing.T) {
		err := Config{Synchronous: "OFF", MaxBatch: -1, BusyTimeout: -1, TargetIndexEvery: -1}.Validate()
		if !errors.Is(err, domain.ErrInvalidInput) {
			t.Fatalf("got %v, want ErrInvalidInput", err)
		}
		for _, word := range []string{"path", "synchronous", "max batch", "busy timeout", "target index"} {
			if !strings.Contains(err.Error(), word) {
				t.Errorf("error %q does not mention %s", err, word)
			}
		}
		if _, err := Open(t.Context(), Config{Path: "x.db", Synchronous: "OFF"}, nil); !errors.Is(err, domain.ErrInvalidInput) {
			t.Fatalf("open with a bad config: %v, want ErrInvalidInput", err)
		}
	})
}

func TestOpen(t *testing.T) {
	t.Run("CreatesDirectory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "a", "b", "ledger.db")
		MustOpen(t, Config{Path: path})
		if _, err := os.Stat(path); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("MigrationsIdempotent", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		for i := range 3 {
			s, err := Open(t.Context(), Config{Path: path}, nil)
			if err != nil {
				t.Fatal(err)
			}
			storetest.MustAppend(t, s, likeReq(t, s, "article/a"+strconv.Itoa(i)))
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
		db := sqlitetest.DB(t, path)
		var n, version int
		if err := db.QueryRow(`SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &version); err != nil {
			t.Fatal(err)
		}
		want, _ := latestVersion()
		if n != want || version != want {
			t.Fatalf("%d migrations recorded up to %d, want %d", n, version, want)
		}
	})
	t.Run("ErrInvalidInputVersions", func(t *testing.T) {
		s := MustOpen(t, Config{Path: filepath.Join(t.TempDir(), "ledger.db")})
		req := likeReq(t, s, "article/a1")
		req.Events[0].StreamVersion = 2
		if _, err := s.Append(t.Context(), req); !errors.Is(err, domain.ErrInvalidInput) {
			t.Fatalf("append with a version gap: %v, want ErrInvalidInput", err)
		}
	})
}

// likeReq builds the first like of a new stream of user alice.
func likeReq(t *testing.T, _ *EventStore, target string) domain.AppendRequest {
	t.Helper()
	st := storetest.MustStream(t, "alice", target)
	e := domain.Event{ID: domain.NewEventID(), Type: domain.EventAdded, Kind: storetest.MustKind(t, "like"),
		User: st.User, Target: st.Target, StreamVersion: 1, OccurredAt: time.Now()}
	return domain.AppendRequest{Stream: st, Events: []domain.Event{e}, State: domain.Evolve(domain.State{}, e)}
}

func TestUnavailable(t *testing.T) {
	t.Run("ReadOnlyStore", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		w := MustOpen(t, Config{Path: path})
		storetest.MustAppend(t, w, likeReq(t, w, "article/a1"))
		r, err := OpenReadOnly(t.Context(), path, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, err := r.Append(t.Context(), likeReq(t, r, "article/a2")); !errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("append to a read-only store: %v, want ErrUnavailable", err)
		}
		storetest.MustAppend(t, w, likeReq(t, w, "article/a3"))
		if last, err := r.LastPosition(t.Context()); err != nil || last != 2 {
			t.Fatalf("read-only store sees last position %d, %v; want the writer's 2", last, err)
		}
	})
	// The write connection turns read-only under the writer (as when the
	// file's permissions change): appends fail with ErrUnavailable, whole.
	t.Run("WritesRefused", func(t *testing.T) {
		s := MustOpen(t, Config{Path: filepath.Join(t.TempDir(), "ledger.db")})
		storetest.MustAppend(t, s, likeReq(t, s, "article/a1"))
		if _, err := s.w.conn.ExecContext(t.Context(), "PRAGMA query_only = 1"); err != nil {
			t.Fatal(err)
		}
		_, err := s.Append(t.Context(), likeReq(t, s, "article/a2"))
		if !errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("append to a read-only connection: %v, want ErrUnavailable", err)
		}
		if _, err := s.w.conn.ExecContext(t.Context(), "PRAGMA query_only = 0"); err != nil {
			t.Fatal(err)
		}
		res := storetest.MustAppend(t, s, likeReq(t, s, "article/a2"))
		if res.LastPosition != 2 {
			t.Fatalf("append after recovery at %d, want 2", res.LastPosition)
		}
	})
	t.Run("ReadOnlyMissing", func(t *testing.T) {
		_, err := OpenReadOnly(t.Context(), filepath.Join(t.TempDir(), "none.db"), nil)
		if !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("open a missing file read-only: %v, want ErrNotFound", err)
		}
	})
	// Another connection holds the write lock past the busy timeout.
	t.Run("Locked", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		s := MustOpen(t, Config{Path: path, BusyTimeout: 50_000_000})
		db := sqlitetest.DB(t, path)
		conn, err := db.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
			t.Fatal(err)
		}
		_, err = s.Append(t.Context(), likeReq(t, s, "article/a1"))
		if !errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("append while another connection holds the lock: %v, want ErrUnavailable", err)
		}
		if _, err := conn.ExecContext(t.Context(), "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
		storetest.MustAppend(t, s, likeReq(t, s, "article/a1"))
	})
	// The same file written by another process: the version check reads
	// the file, not a cache.
	t.Run("OtherWriter", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		a := MustOpen(t, Config{Path: path})
		b := MustOpen(t, Config{Path: path})
		storetest.MustAppend(t, a, likeReq(t, a, "article/a1"))
		if _, err := b.Append(t.Context(), likeReq(t, b, "article/a1")); !errors.Is(err, domain.ErrVersionConflict) {
			t.Fatalf("append at a version another writer moved past: %v, want ErrVersionConflict", err)
		}
		res := storetest.MustAppend(t, b, likeReq(t, b, "article/a2"))
		if res.LastPosition != 2 {
			t.Fatalf("second writer appended at %d, want 2", res.LastPosition)
		}
		// b moves a stream a has just written (and may remember at 1).
		req := likeReq(t, a, "article/a3")
		storetest.MustAppend(t, a, req)
		next := likeReq(t, b, "article/a3")
		next.ExpectedVersion, next.Events[0].StreamVersion = 1, 2
		storetest.MustAppend(t, b, next)
		stale := likeReq(t, a, "article/a3")
		stale.ExpectedVersion, stale.Events[0].StreamVersion = 1, 2
		if _, err := a.Append(t.Context(), stale); !errors.Is(err, domain.ErrVersionConflict) {
			t.Fatalf("append at a version the other writer moved past: %v, want ErrVersionConflict", err)
		}
		if snap, err := a.Snapshot(t.Context(), req.Stream); err != nil || snap.Version != 2 || snap.LastPosition != 4 {
			t.Fatalf("snapshot %+v, %v; want version 2 at 4", snap, err)
		}
	})
	t.Run("Translate", func(t *testing.T) {
		for _, code := range []sqlite3.ErrNo{sqlite3.ErrFull, sqlite3.ErrReadonly, sqlite3.ErrIoErr,
			sqlite3.ErrCantOpen, sqlite3.ErrCorrupt, sqlite3.ErrBusy} {
			err := translate(sqlite3.Error{Code: code})
			if !errors.Is(err, domain.ErrUnavailable) {
				t.Errorf("code %d: %v, want ErrUnavailable", code, err)
			}
			var se sqlite3.Error
			if !errors.As(err, &se) || se.Code != code {
				t.Errorf("code %d: the driver error is lost", code)
			}
		}
		if err := translate(context.Canceled); err != context.Canceled {
			t.Errorf("non-driver error changed: %v", err)
		}
	})
}

func TestClose(t *testing.T) {
	s, err := Open(t.Context(), Config{Path: filepath.Join(t.TempDir(), "ledger.db")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	storetest.MustAppend(t, s, likeReq(t, s, "article/a1"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := s.Append(t.Context(), likeReq(t, s, "article/a2")); !errors.Is(err, domain.ErrClosed) {
		t.Fatalf("append after close: %v, want ErrClosed", err)
	}
	if _, err := s.LastPosition(t.Context()); !errors.Is(err, domain.ErrClosed) {
		t.Fatalf("read after close: %v, want ErrClosed", err)
	}
}

// TestCloseLeavesNoWAL: after Close the file alone holds the log: its WAL
// is gone or empty, and a copy of the file without it has every event. The
// read pool, closed last, cannot checkpoint, so the whole log used to stay
// in the WAL and a copy of the stopped server's file held no events.
func TestCloseLeavesNoWAL(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ledger.db")
	s, err := Open(t.Context(), Config{Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	for i := range n {
		storetest.MustAppend(t, s, likeReq(t, s, "article/a"+strconv.Itoa(i)))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(path + "-wal"); err == nil && info.Size() > 0 {
		t.Errorf("the WAL holds %d bytes after Close, want none", info.Size())
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(backup, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var got int
	if err := sqlitetest.DB(t, backup).QueryRow(`SELECT count(*) FROM events`).Scan(&got); err != nil || got != n {
		t.Fatalf("the file alone holds %d events (%v), want %d", got, err, n)
	}
}

func TestStats(t *testing.T) {
	s := MustOpen(t, Config{Path: filepath.Join(t.TempDir(), "ledger.db")})
	storetest.MustAppend(t, s, likeReq(t, s, "article/a1"))
	storetest.MustAppend(t, s, likeReq(t, s, "article/a2"))
	st, err := s.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []KindTotal{{Kind: "like", Type: domain.EventAdded, Events: 2}}
	if st.Events != 2 || st.Streams != 2 || st.LastPosition != 2 || st.FileBytes == 0 ||
		len(st.Totals) != 1 || st.Totals[0] != want[0] {
		t.Fatalf("stats %+v", st)
	}
}

// TestCancelWhileWriterBlocked queues appends behind a writer stuck on
// another connection's lock and cancels them: each caller is told the
// truth, and a cancelled append is never written.
func TestCancelWhileWriterBlocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s := MustOpen(t, Config{Path: path, BusyTimeout: time.Minute})
	conn, err := sqlitetest.DB(t, path).Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	const n = 40
	reqs := make([]domain.AppendRequest, n)
	errs := make([]error, n)
	done := make(chan int, n)
	cancels := make([]context.CancelFunc, n)
	for i := range reqs {
		reqs[i] = likeReq(t, s, "article/a"+strconv.Itoa(i))
		ctx, cancel := context.WithCancel(t.Context())
		cancels[i] = cancel
		go func() {
			_, errs[i] = s.Append(ctx, reqs[i])
			done <- i
		}()
	}
	// Cancel every other append: those still queued give up at once,
	// those the writer has taken wait for the lock like the rest.
	for i := 0; i < n; i += 2 {
		cancels[i]()
	}
	if _, err := conn.ExecContext(t.Context(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	for range n {
		<-done
	}
	gaveUp := 0
	defer func() { t.Logf("%d of %d cancelled appends gave up while queued", gaveUp, n/2) }()
	for i, err := range errs {
		cancels[i]()
		if err != nil {
			gaveUp++
		}
		if err != nil && (i%2 == 1 || !errors.Is(err, context.Canceled)) {
			t.Fatalf("append %d: %v", i, err)
		}
		ok, herr := s.HasEvent(t.Context(), reqs[i].Events[0].ID)
		if herr != nil || ok != (err == nil) {
			t.Fatalf("append %d answered %v, stored %t (%v)", i, err, ok, herr)
		}
	}
}

// TestReadEventsCancel ends the context in the middle of a long read.
func TestReadEventsCancel(t *testing.T) {
	s := MustOpen(t, Config{Path: filepath.Join(t.TempDir(), "ledger.db")})
	for i := range 3 * chunkRows {
		storetest.MustAppend(t, s, likeReq(t, s, "article/a"+strconv.Itoa(i)))
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	n := 0
	var err error
	for _, err = range s.ReadEvents(ctx, domain.EventFilter{}) {
		if err != nil {
			break
		}
		if n++; n == chunkRows+1 {
			cancel()
		}
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("read with a context ended after %d events: %v, want context.Canceled", n, err)
	}
	got := 0
	for _, err = range s.ReadEvents(t.Context(), domain.EventFilter{}) {
		if err != nil {
			break
		}
		got++
	}
	if err != nil || got != 3*chunkRows {
		t.Fatalf("read after a cancelled read: %d events, %v", got, err)
	}
}

// TestDecideAfterAnotherWriter: a store decides against what another
// store on the same file wrote since its own last commit, not against its
// cache of the streams it wrote: a like after the other's unlike appends,
// and an unlike of a stream only the other has written appends too; an
// import's first row of a pair (expected version 0) on a stream the other
// created fails its precondition (it takes the new stream's one-statement
// path first). Each way with the other's streams indexed at once and left
// waiting.
func TestDecideAfterAnotherWriter(t *testing.T) {
	for _, every := range []int{1, 1000} {
		t.Run("index every "+strconv.Itoa(every), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ledger.db")
			a := MustOpen(t, Config{Path: path, TargetIndexEvery: every})
			b := MustOpen(t, Config{Path: path, TargetIndexEvery: every})
			decide := func(s *EventStore, user string, on bool) domain.Outcome {
				t.Helper()
				return storetest.MustDecide(t, s, domain.DecideRequest{
					Command: storetest.Command(t, storetest.MustStream(t, user, "article/a1"), "like", on)})
			}
			decide(a, "alice", true)
			if out := decide(b, "alice", false); !out.Changed || out.StreamVersion != 2 {
				t.Fatalf("the other store's unlike: %+v, want version 2", out)
			}
			if out := decide(a, "alice", true); !out.Changed || out.StreamVersion != 3 || out.Position != 3 {
				t.Fatalf("a like after the other store's unlike: %+v, want an append at version 3, position 3", out)
			}
			decide(b, "bob", true)
			if out := decide(a, "bob", false); !out.Changed || out.StreamVersion != 2 {
				t.Fatalf("an unlike of the other store's stream: %+v, want an append at version 2", out)
			}
			if out := decide(b, "bob", false); out.Changed || out.StreamVersion != 2 || out.Position != 5 {
				t.Fatalf("the other store's second unlike: %+v, want no change at version 2, position 5", out)
			}
			// An import's first row of a pair (expected version 0) on a
			// stream the other store created: no stream row made twice.
			decide(a, "carol", true)
			zero := int64(0)
			_, err := b.Decide(t.Context(), domain.DecideRequest{ExpectedVersion: &zero,
				Command: storetest.Command(t, storetest.MustStream(t, "carol", "article/a1"), "collect", true)})
			if !errors.Is(err, domain.ErrPreconditionFailed) {
				t.Fatalf("at version 0 on the other store's stream: %v, want ErrPreconditionFailed", err)
			}
			if n := len(storetest.MustReadAll(t, b, domain.EventFilter{})); n != 6 {
				t.Fatalf("%d events, want 6", n)
			}
		})
	}
}

// TestDecideOnABadStoredState: a stream whose stored state does not decode
// (another program wrote it) fails the command decided on it alone, as on
// PostgreSQL. The writer took it for a failed read: the group commit
// failed as a whole, every other append of its batch with it, and the
// store was reported failing (/readyz, the failure log). The error is the
// log's fault, not the request's: it must not match ErrInvalidInput, which
// the HTTP API answers 400.
func TestDecideOnABadStoredState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	var failed []error
	s := MustOpen(t, Config{Path: path, OnCommit: func(st CommitStats) {
		if st.Err != nil {
			failed = append(failed, st.Err)
		}
	}})
	st := storetest.MustStream(t, "alice", "article/a1")
	storetest.MustDecide(t, s, domain.DecideRequest{Command: storetest.Command(t, st, "like", true)})
	if _, err := sqlitetest.DB(t, path).Exec(`UPDATE streams SET state = 'Not A Kind'`); err != nil {
		t.Fatal(err)
	}
	_, err := s.Decide(t.Context(), domain.DecideRequest{Command: storetest.Command(t, st, "collect", true)})
	if len(failed) > 0 {
		t.Fatalf("the command failed its group commit: %v", failed)
	}
	if !errors.Is(err, domain.ErrUnavailable) || errors.Is(err, domain.ErrInvalidInput) || !strings.Contains(err.Error(), "stored state") {
		t.Fatalf("a command on a stream with a bad stored state: %v, want ErrUnavailable naming the stored state, not invalid input", err)
	}
}

// TestBadStoredStateReads: a snapshot and an idempotency record whose
// stored state does not decode are the log's fault (storetest).
func TestBadStoredStateReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	storetest.CheckBadStoredStateReads(t, MustOpen(t, Config{Path: path}), func() {
		if _, err := sqlitetest.DB(t, path).Exec(`UPDATE streams SET state = 'Not A Kind'; UPDATE idempotency SET state = 'Not A Kind'`); err != nil {
			t.Fatal(err)
		}
	})
}

// TestDecideReadOnly: Decide on a store opened read-only (storetest).
func TestDecideReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	w := MustOpen(t, Config{Path: path})
	ro, err := OpenReadOnly(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	storetest.CheckDecideReadOnly(t, w, ro)
}

// TestCopyContract runs the logcopy.Store suite: SQLite file to file.
func TestCopyContract(t *testing.T) {
	storetest.RunCopy(t, func(t *testing.T, path string) domain.EventStore {
		return MustOpen(t, Config{Path: path})
	})
}
