package projections_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/sqlite"
	"github.com/interactionledger/ledger/adapters/storetest/loggen"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

// MustStore opens a real SQLite store in a temp dir.
func MustStore(tb testing.TB) *sqlite.EventStore {
	tb.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(tb.TempDir(), "ledger.db"), Synchronous: "NORMAL"}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// MustGenerate fills store with n random toggles over a small universe.
func MustGenerate(tb testing.TB, store domain.EventStore, n int64) {
	tb.Helper()
	got, err := loggen.Generate(context.Background(), store, loggen.Config{
		Events: n, Users: 40, Targets: 25, Workers: 8, Kinds: kinds, HotShare: 0.3, Seed: 7,
	})
	if err != nil || got != n {
		tb.Fatalf("generated %d of %d: %v", got, n, err)
	}
}

// applyLive feeds the whole log to every projection in batches, as the bus
// does.
func applyLive(tb testing.TB, s *projections.Set, store domain.EventStore, batch int) {
	tb.Helper()
	var buf []domain.Event
	flush := func() {
		applyAll(tb, s, buf)
		buf = buf[:0]
	}
	for e, err := range store.ReadEvents(context.Background(), domain.EventFilter{}) {
		if err != nil {
			tb.Fatal(err)
		}
		if buf = append(buf, e); len(buf) == batch {
			flush()
		}
	}
	flush()
}

// snapshot reads every target of the generated universe, with a viewer,
// and the first page of actors and of every user's collection.
func snapshot(tb testing.TB, s *projections.Set) []any {
	tb.Helper()
	ctx := context.Background()
	var ts []domain.Target
	for i := range 25 {
		ts = append(ts, mustTarget(tb, "article/a"+strconv.Itoa(i)))
	}
	ts = append(ts, mustTarget(tb, "article/hot"))
	var out []any
	for u := range 40 {
		user := mustUser(tb, "u"+strconv.Itoa(u))
		vs, err := s.Targets(ctx, ts, &user)
		if err != nil {
			tb.Fatal(err)
		}
		c, err := s.Collection(ctx, user, like, "", projections.MaxLimit, "")
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, vs, c.Items)
	}
	for _, t := range ts {
		a, err := s.Actors(ctx, t, coll, projections.MaxLimit, "")
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, a.Items)
	}
	return out
}

func mustVerify(tb testing.TB, s *projections.Set, store domain.EventStore) projections.Report {
	tb.Helper()
	r, err := s.Verify(context.Background(), store, tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func TestRebuild(t *testing.T) {
	ctx := context.Background()
	store := MustStore(t)
	MustGenerate(t, store, 4000)
	path := filepath.Join(t.TempDir(), "views")
	s, err := projections.Open(ctx, projections.Config{Path: path, Kinds: kinds, FoldKeys: 100}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	applyLive(t, s, store, 97)
	live := snapshot(t, s)
	if r := mustVerify(t, s, store); !r.OK() || r.Checked[projections.Counts] != 4000 {
		t.Fatalf("verify live: %+v", r)
	}

	t.Run("All", func(t *testing.T) {
		var last projections.Progress
		if err := s.Rebuild(ctx, store, nil, func(p projections.Progress) { last = p }); err != nil {
			t.Fatal(err)
		}
		if last.Phase != "done" || last.Done != 4000 || last.Total != 4000 {
			t.Fatalf("last progress %+v", last)
		}
		if got := snapshot(t, s); !reflect.DeepEqual(got, live) {
			t.Fatal("rebuilt read model differs from the live one")
		}
		if r := mustVerify(t, s, store); !r.OK() {
			t.Fatalf("verify: %+v", r)
		}
	})
	// A rebuild of latest toggles writes the first interaction table it
	// rebuilds from the folds and copies the others from it: every subset
	// must come out as the live tables.
	t.Run("Subsets", func(t *testing.T) {
		for _, names := range [][]string{
			{projections.Actors, projections.Collection}, {projections.Collection},
			{projections.Viewer, projections.Collection}, {projections.Counts, projections.Actors},
		} {
			if err := s.Rebuild(ctx, store, names, nil); err != nil {
				t.Fatal(err)
			}
			if got := snapshot(t, s); !reflect.DeepEqual(got, live) {
				t.Fatalf("rebuilt %v: read model differs from the live one", names)
			}
			if r := mustVerify(t, s, store); !r.OK() {
				t.Fatalf("rebuilt %v: verify: %+v", names, r)
			}
		}
	})
	// The sqlite store is a domain.LatestReader, so the rebuild above read
	// only each interaction's last event; a store without it has the whole
	// log folded, which must give the same tables.
	t.Run("WholeLogFold", func(t *testing.T) {
		plain := struct{ domain.EventStore }{store}
		if err := s.Rebuild(ctx, plain, nil, nil); err != nil {
			t.Fatal(err)
		}
		if got := snapshot(t, s); !reflect.DeepEqual(got, live) {
			t.Fatal("rebuilt read model differs from the live one")
		}
		if r := mustVerify(t, s, plain); !r.OK() {
			t.Fatalf("verify: %+v", r)
		}
	})
	// Cancelled while a fold is being written and the next one read: the
	// rebuild stops with the context's error and the live tables answer
	// as before.
	t.Run("Cancelled", func(t *testing.T) {
		for _, st := range []domain.EventStore{store, struct{ domain.EventStore }{store}} {
			cctx, cancel := context.WithCancel(ctx)
			writes := 0
			err := s.Rebuild(cctx, st, nil, func(p projections.Progress) {
				if p.Phase == "write" {
					if writes++; writes == 2 {
						cancel()
					}
				}
			})
			cancel()
			if !errors.Is(err, context.Canceled) || writes < 2 {
				t.Fatalf("%T: err %v after %d writes, want context.Canceled", st, err, writes)
			}
			if got := snapshot(t, s); !reflect.DeepEqual(got, live) {
				t.Fatal("read model changed by a cancelled rebuild")
			}
		}
	})
	t.Run("One", func(t *testing.T) {
		if err := s.Rebuild(ctx, store, []string{projections.Actors}, nil); err != nil {
			t.Fatal(err)
		}
		if got := snapshot(t, s); !reflect.DeepEqual(got, live) {
			t.Fatal("rebuilt read model differs from the live one")
		}
	})
	t.Run("ErrUnknown", func(t *testing.T) {
		if err := s.Rebuild(ctx, store, []string{"nope"}, nil); !errors.Is(err, domain.ErrInvalidInput) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("VerifyFindsCorruption", func(t *testing.T) {
		db := mustDB(t, path)
		if _, err := db.Exec(`UPDATE counts SET n = n + 1 WHERE target_id = 'hot' AND kind = 'like'`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`DELETE FROM collection WHERE position = (SELECT max(position) FROM collection)`); err != nil {
			t.Fatal(err)
		}
		r := mustVerify(t, s, store)
		sides := map[string]int{}
		for _, d := range r.Differences {
			sides[d.Projection+"/"+d.Side]++
		}
		if sides["counts/live"] != 1 || sides["counts/log"] != 1 || sides["collection/log"] != 1 || len(r.Differences) != 3 {
			t.Fatalf("differences %+v", r.Differences)
		}
		// A rebuild repairs it.
		if err := s.Rebuild(ctx, store, nil, nil); err != nil {
			t.Fatal(err)
		}
		if r := mustVerify(t, s, store); !r.OK() {
			t.Fatalf("after rebuild: %+v", r)
		}
	})
}

func TestOpenRebuilds(t *testing.T) {
	ctx := context.Background()
	store := MustStore(t)
	MustGenerate(t, store, 1500)
	path := filepath.Join(t.TempDir(), "views")
	var phases []string
	cfg := projections.Config{Path: path, Kinds: kinds, OnProgress: func(p projections.Progress) { phases = append(phases, p.Phase) }}
	// A new views file over a non-empty log is built from the log.
	s, err := projections.Open(ctx, cfg, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Applied() != 1500 || len(phases) == 0 || phases[len(phases)-1] != "done" {
		t.Fatalf("applied %d, phases %v", s.Applied(), phases)
	}
	want := snapshot(t, s)
	s.Close()

	// A changed schema version rebuilds at Open.
	db := mustDB(t, path)
	if _, err := db.Exec(`UPDATE checkpoints SET version = 0 WHERE projection = 'viewer'`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM viewer`); err != nil {
		t.Fatal(err)
	}
	if _, err := projections.Open(ctx, projections.Config{Path: path, Kinds: kinds}, nil, nil); !errors.Is(err, domain.ErrInvalidInput) {
		t.Fatalf("Open without a store: %v", err)
	}
	phases = nil
	s, err = projections.Open(ctx, cfg, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(phases) == 0 || !reflect.DeepEqual(snapshot(t, s), want) {
		t.Fatalf("not rebuilt: phases %v", phases)
	}
}

func TestBuildAsOf(t *testing.T) {
	ctx := context.Background()
	store := MustStore(t)
	MustGenerate(t, store, 1200)
	dir := t.TempDir()

	// The reference: the first 700 events applied live.
	ref := MustOpen(t, "")
	first, err := domain.AppendEvents(nil, store.ReadEvents(ctx, domain.EventFilter{Limit: 700}))
	if err != nil {
		t.Fatal(err)
	}
	applyAll(t, ref, first)

	t.Run("Position", func(t *testing.T) {
		path := filepath.Join(dir, "at700")
		pos, err := projections.BuildAsOf(ctx, store, path, kinds, projections.AsOf{Position: 700}, nil, nil)
		if err != nil || pos != 700 {
			t.Fatalf("pos %d, err %v", pos, err)
		}
		s := MustOpen(t, path)
		if s.Applied() != 700 || !reflect.DeepEqual(snapshot(t, s), snapshot(t, ref)) {
			t.Fatal("as-of read model differs from the live one at 700")
		}
		if _, err := projections.BuildAsOf(ctx, store, path, kinds, projections.AsOf{Position: 1}, nil, nil); !errors.Is(err, domain.ErrInvalidInput) {
			t.Fatalf("existing file: %v", err)
		}
	})
	t.Run("Time", func(t *testing.T) {
		at := first[699].RecordedAt
		pos, err := projections.BuildAsOf(ctx, store, filepath.Join(dir, "attime"), kinds, projections.AsOf{Time: at}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		// The last position recorded at or before the time.
		var want int64
		for e, err := range store.ReadEvents(ctx, domain.EventFilter{}) {
			if err != nil {
				t.Fatal(err)
			}
			if !e.RecordedAt.After(at) {
				want = e.Position
			}
		}
		if pos != want || pos < 700 {
			t.Fatalf("pos %d, want %d (%v)", pos, want, err)
		}
	})
	t.Run("BeforeTheLog", func(t *testing.T) {
		pos, err := projections.BuildAsOf(ctx, store, filepath.Join(dir, "before"), kinds,
			projections.AsOf{Time: first[0].RecordedAt.Add(-1)}, nil, nil)
		if err != nil || pos != 0 {
			t.Fatalf("pos %d, err %v", pos, err)
		}
	})
	if _, err := os.Stat(filepath.Join(dir, "at700")); err != nil {
		t.Fatal(err)
	}
}

// TestAsOfKeepsAFileMadeWhileItScanned: the path was checked for a file
// before the scan for --time, which reads the whole log, and the build
// then opened whatever was there by then (another run's --out) and, on
// failing, removed it: a file it had not made.
func TestAsOfKeepsAFileMadeWhileItScanned(t *testing.T) {
	store := MustStore(t)
	MustGenerate(t, store, 10)
	path := filepath.Join(t.TempDir(), "nov1.db")
	racing := fileOnRead{EventReader: store, path: path}
	_, err := projections.BuildAsOf(context.Background(), racing, path, kinds, projections.AsOf{Time: time.Now()}, nil, nil)
	if err == nil {
		t.Fatal("built into a file made by another")
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "another run's export" {
		t.Errorf("the other file after: %q %v, want it kept", b, err)
	}
}

// asOfThroughALink returns a log of 10 events and, in a new directory, the
// path real.db (no file yet) and nov1.db, a symlink to it.
func asOfThroughALink(t *testing.T) (store *sqlite.EventStore, real, link string) {
	store = MustStore(t)
	MustGenerate(t, store, 10)
	dir := t.TempDir()
	real, link = filepath.Join(dir, "real.db"), filepath.Join(dir, "nov1.db")
	if err := os.Symlink("real.db", link); err != nil {
		t.Fatal(err)
	}
	return store, real, link
}

// TestAsOfThroughALinkToNoFileYet: --out a symlink to a file not there
// yet passed the first check (which follows the link), and after the scan
// the O_EXCL create refused the link itself as existing (exit 2, the scan
// wasted), where the build used to write through it. The file is made
// where the link points, and the link is kept.
func TestAsOfThroughALinkToNoFileYet(t *testing.T) {
	store, real, link := asOfThroughALink(t)
	if pos, err := projections.BuildAsOf(context.Background(), store, link, kinds, projections.AsOf{Position: 5}, nil, nil); err != nil || pos != 5 {
		t.Fatalf("as-of through a link to no file: %d %v, want 5", pos, err)
	}
	if info, err := os.Lstat(link); err != nil || info.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link after: %v %v, want it kept", info, err)
	}
	if b, err := os.ReadFile(real); err != nil || !strings.HasPrefix(string(b), "SQLite format 3\x00") {
		t.Errorf("%s after: %v, want the as-of database", real, err)
	}
}

// TestAsOfNamesTheGivenPath: refused because the file exists, as-of names
// the path the user gave, and where its link leads; it named only the
// link's target, a path the user may never have typed.
func TestAsOfNamesTheGivenPath(t *testing.T) {
	store, real, link := asOfThroughALink(t)
	if err := os.WriteFile(real, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := projections.BuildAsOf(context.Background(), store, link, kinds, projections.AsOf{Position: 5}, nil, nil)
	if want := link + " (a link to " + real + ") exists"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("as-of over a link to a file: %v, want %q", err, want)
	}
	_, err = projections.BuildAsOf(context.Background(), store, real, kinds, projections.AsOf{Position: 5}, nil, nil)
	if want := real + " exists"; err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "link") {
		t.Errorf("as-of over a file: %v, want %q", err, want)
	}
}

// fileOnRead is a log whose first read makes a file at path, as another
// process could while a scan runs.
type fileOnRead struct {
	domain.EventReader
	path string
}

func (f fileOnRead) ReadEvents(ctx context.Context, filter domain.EventFilter) iter.Seq2[domain.Event, error] {
	if _, err := os.Stat(f.path); errors.Is(err, os.ErrNotExist) {
		_ = os.WriteFile(f.path, []byte("another run's export"), 0o644)
	}
	return f.EventReader.ReadEvents(ctx, filter)
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

// TestOpenRebuildsFarBehind: with RebuildBehind, Open rebuilds the
// projections whose backlog is at least the minimum and a fifth of the
// log, and catches up the others; both ways reach the same tables.
func TestOpenRebuildsFarBehind(t *testing.T) {
	ctx := context.Background()
	store := MustStore(t)
	MustGenerate(t, store, 1000)
	defer projections.SetRebuildBacklog(300, 5)()
	dir := t.TempDir()
	open := func(at int64, rebuildBehind bool) (*projections.Set, []string) {
		t.Helper()
		path := filepath.Join(dir, fmt.Sprintf("at%d-%t", at, rebuildBehind))
		if _, err := projections.BuildAsOf(ctx, store, path, kinds, projections.AsOf{Position: at}, nil, nil); err != nil {
			t.Fatal(err)
		}
		var phases []string
		s, err := projections.Open(ctx, projections.Config{Path: path, Kinds: kinds, RebuildBehind: rebuildBehind,
			OnProgress: func(p projections.Progress) { phases = append(phases, p.Phase) }}, store, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if s.Applied() != 1000 {
			t.Fatalf("views at %d, RebuildBehind %t: applied %d after Open, want 1000", at, rebuildBehind, s.Applied())
		}
		return s, phases
	}
	caughtUp, phases := open(100, false)
	if len(phases) != 0 {
		t.Fatalf("without RebuildBehind: rebuild phases %v", phases)
	}
	rebuilt, phases := open(100, true)
	if len(phases) == 0 || phases[len(phases)-1] != "done" {
		t.Fatalf("900 events behind a log of 1000: phases %v, want a rebuild", phases)
	}
	if !reflect.DeepEqual(snapshot(t, rebuilt), snapshot(t, caughtUp)) {
		t.Fatal("the rebuilt views differ from the caught-up ones")
	}
	if _, phases := open(750, true); len(phases) != 0 {
		t.Fatalf("250 behind, under the minimum of 300: phases %v, want a catch-up", phases)
	}
	defer projections.SetRebuildBacklog(100, 5)()
	if _, phases := open(850, true); len(phases) != 0 {
		t.Fatalf("150 behind a log of 1000, under a fifth: phases %v, want a catch-up", phases)
	}
	if _, phases := open(790, true); len(phases) == 0 {
		t.Fatal("210 behind a log of 1000, over the minimum and a fifth: no rebuild")
	}
}

// TestOpenRefusesViewsAhead: a server (RebuildBehind) does not open a
// views file that has applied positions beyond its log's head (another
// log's, or a log restored from an older copy), which it would serve and
// never apply the log's next appends to; rebuild and verify (without
// RebuildBehind) open it, and a rebuild brings it back to the log.
func TestOpenRefusesViewsAhead(t *testing.T) {
	ctx := context.Background()
	big, small := MustStore(t), MustStore(t)
	MustGenerate(t, big, 300)
	MustGenerate(t, small, 20)
	path := filepath.Join(t.TempDir(), "big.views")
	if _, err := projections.BuildAsOf(ctx, big, path, kinds, projections.AsOf{Position: 300}, nil, nil); err != nil {
		t.Fatal(err)
	}
	// The small log as a copy of big's, restored from when it held 20
	// events: the same log, so only its head tells.
	restored := sameLog{small, big.LogID()}
	_, err := projections.Open(ctx, projections.Config{Path: path, Kinds: kinds, RebuildBehind: true}, restored, nil)
	if !errors.Is(err, projections.ErrAhead) || !strings.Contains(err.Error(), "300") {
		t.Fatalf("a server opening views at 300 over a log of 20: %v, want ErrAhead", err)
	}
	s, err := projections.Open(ctx, projections.Config{Path: path, Kinds: kinds}, small, nil)
	if err != nil {
		t.Fatalf("without RebuildBehind: %v", err)
	}
	if err := s.Rebuild(ctx, small, nil, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = projections.Open(ctx, projections.Config{Path: path, Kinds: kinds, RebuildBehind: true}, small, nil)
	if err != nil {
		t.Fatalf("a server after the rebuild: %v", err)
	}
	defer s.Close()
	if s.Applied() != 20 {
		t.Fatalf("after a rebuild from the log of 20: applied %d", s.Applied())
	}
}

// sameLog is a store that names itself as another log (a log restored
// from an older copy keeps its identity).
type sameLog struct {
	*sqlite.EventStore
	id string
}

func (s sameLog) LogID() string { return s.id }

// TestOpenRefusesViewsOfAnotherLog: a server (RebuildBehind) does not open
// a views file built from another log, even one behind this log's head
// (which refuseAhead cannot tell); verify reports it, and a rebuild makes
// it this log's. A views file with no log recorded (older than log
// identities) is taken as the log's.
func TestOpenRefusesViewsOfAnotherLog(t *testing.T) {
	ctx := context.Background()
	small, big := MustStore(t), MustStore(t)
	MustGenerate(t, small, 20)
	MustGenerate(t, big, 300)
	path := filepath.Join(t.TempDir(), "small.views")
	s, err := projections.Open(ctx, projections.Config{Path: path, Kinds: kinds, RebuildBehind: true}, small, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	server := projections.Config{Path: path, Kinds: kinds, RebuildBehind: true}
	_, err = projections.Open(ctx, server, big, nil)
	if !errors.Is(err, projections.ErrOtherLog) || !strings.Contains(err.Error(), small.LogID()) || !strings.Contains(err.Error(), big.LogID()) {
		t.Fatalf("a server opening the views of a log of 20 over another log of 300: %v, want ErrOtherLog naming both", err)
	}
	s, err = projections.Open(ctx, projections.Config{Path: path, Kinds: kinds}, big, nil)
	if err != nil {
		t.Fatalf("without RebuildBehind: %v", err)
	}
	if r := mustVerify(t, s, big); r.OK() || !strings.Contains(fmt.Sprint(r.Differences), small.LogID()) {
		t.Fatalf("verify of another log's views: %+v, want differences naming its log", r)
	}
	if err := s.Rebuild(ctx, big, nil, nil); err != nil {
		t.Fatal(err)
	}
	if r := mustVerify(t, s, big); !r.OK() {
		t.Fatalf("verify after the rebuild: %+v", r)
	}
	s.Close()
	s, err = projections.Open(ctx, server, big, nil)
	if err != nil || s.Applied() != 300 {
		t.Fatalf("a server after the rebuild: applied %v, %v; want 300", s, err)
	}
	s.Close()

	// A file older than log identities: its projections are taken as the
	// log's, and kept as its from then on.
	forgetLogs(t, path)
	// A mistaken log that the file is ahead of is refused, and does not
	// claim the file.
	if _, err = projections.Open(ctx, server, small, nil); !errors.Is(err, projections.ErrAhead) {
		t.Fatalf("a file with no log recorded over a shorter log: %v, want ErrAhead", err)
	}
	if s, err = projections.Open(ctx, server, big, nil); err != nil {
		t.Fatalf("a views file with no log recorded: %v", err)
	}
	s.Close()
	if _, err = projections.Open(ctx, server, small, nil); !errors.Is(err, projections.ErrOtherLog) {
		t.Fatalf("after adopting one log, another: %v, want ErrOtherLog", err)
	}
}

// forgetLogs removes the logs a views file records, as in a file written
// before log identities.
func forgetLogs(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if res, err := db.Exec(`DELETE FROM meta WHERE key LIKE 'log:%'`); err != nil {
		t.Fatal(err)
	} else if n, _ := res.RowsAffected(); n == 0 {
		t.Fatal("the views file records no log")
	}
}

// TestNoStore: Rebuild and CatchUp without a store are bad input, not a
// panic (Open allows a Set without one).
func TestNoStore(t *testing.T) {
	s := MustOpen(t, filepath.Join(t.TempDir(), "v.db"))
	if err := s.Rebuild(context.Background(), nil, nil, nil); !errors.Is(err, domain.ErrInvalidInput) {
		t.Errorf("Rebuild(nil): %v", err)
	}
	if err := s.CatchUp(context.Background(), nil); !errors.Is(err, domain.ErrInvalidInput) {
		t.Errorf("CatchUp(nil): %v", err)
	}
}

// TestQueriesAfterClose: every query of a closed Set is ErrClosed, also
// those the in-memory copy could still answer.
func TestQueriesAfterClose(t *testing.T) {
	ctx := context.Background()
	store := MustStore(t)
	MustGenerate(t, store, 50)
	s, err := projections.Open(ctx, projections.Config{Path: filepath.Join(t.TempDir(), "v.db"), Kinds: kinds}, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	tg := mustTarget(t, "article/a1")
	u := mustUser(t, "u1")
	like := mustKind("like")
	_, e1 := s.Target(ctx, tg, &u)
	_, e2 := s.Actors(ctx, tg, like, 10, "")
	_, e3 := s.Collection(ctx, u, like, "", 10, "")
	_, e4 := s.Checkpoint(ctx, "counts")
	_, e5 := s.LowestCheckpoint(ctx)
	e6 := s.CatchUp(ctx, store)
	for i, err := range []error{e1, e2, e3, e4, e5, e6} {
		if !errors.Is(err, domain.ErrClosed) {
			t.Errorf("query %d after Close: %v, want ErrClosed", i+1, err)
		}
	}
	if s.Err() != nil {
		t.Errorf("a CatchUp after Close marked a projection failed: %v", s.Err())
	}
}

// A set of some projections answers a query that reads another with a
// named ErrInvalidInput (it was SQLite's "no such table"), and a name
// listed twice is refused.
func TestQueriesOutsideTheSet(t *testing.T) {
	ctx := context.Background()
	s, err := projections.Open(ctx, projections.Config{Path: filepath.Join(t.TempDir(), "v.db"), Kinds: kinds,
		Projections: []string{projections.Counts, projections.Viewer}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tg, u, like := mustTarget(t, "article/a1"), mustUser(t, "u1"), mustKind("like")
	if _, err := s.Target(ctx, tg, &u); err != nil {
		t.Fatalf("counts and viewer: %v", err)
	}
	countsOnly, err := projections.Open(ctx, projections.Config{Path: filepath.Join(t.TempDir(), "c.db"), Kinds: kinds,
		Projections: []string{projections.Counts}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer countsOnly.Close()
	_, e1 := countsOnly.Target(ctx, tg, nil)
	_, e2 := s.Actors(ctx, tg, like, 10, "")
	_, e3 := s.Collection(ctx, u, like, "", 10, "")
	for i, err := range []error{e1, e2, e3} {
		if !errors.Is(err, domain.ErrInvalidInput) || !strings.Contains(err.Error(), "not in this set") {
			t.Errorf("query %d outside the set: %v, want ErrInvalidInput naming the projection", i+1, err)
		}
	}
	twice := projections.Config{Path: "v", Kinds: kinds, Projections: []string{projections.Counts, projections.Counts}}
	if err := twice.Validate(); !errors.Is(err, domain.ErrInvalidInput) {
		t.Errorf("a projection listed twice: %v", err)
	}
}

// Verify reports a checkpoint it cannot check the tables at — beyond the
// log's last position (the server refuses such a file) or of another
// schema version — instead of calling the file right.
func TestVerifyReportsBadCheckpoints(t *testing.T) {
	ctx := context.Background()
	store := MustStore(t)
	MustGenerate(t, store, 200)
	path := filepath.Join(t.TempDir(), "views")
	s, err := projections.Open(ctx, projections.Config{Path: path, Kinds: kinds}, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for stmt, want := range map[string]string{
		`UPDATE checkpoints SET position = 5000 WHERE projection = 'viewer'`: "beyond the log's last position 200",
		`UPDATE checkpoints SET version = 99 WHERE projection = 'actors'`:    "version=99",
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
		r := mustVerify(t, s, store)
		if r.OK() || !slices.ContainsFunc(r.Differences, func(d projections.Difference) bool { return strings.Contains(d.Row, want) }) {
			t.Errorf("after %s: %+v, want a difference saying %q", stmt, r, want)
		}
	}
}

// A query the views file cannot answer (a damaged file; here a table gone)
// is ErrUnreadable, which matches domain.ErrUnavailable (a server's 503),
// not a bare SQLite error (a 500).
func TestUnreadableViews(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v.db")
	s, err := projections.Open(ctx, projections.Config{Path: path, Kinds: kinds, MemoryRows: -1}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l := newEventLog(t)
	l.add("u1", "article/a", like, true)
	applyAll(t, s, l.events)
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DROP TABLE actors`); err != nil {
		t.Fatal(err)
	}
	_, err = s.Actors(ctx, mustTarget(t, "article/a"), like, 10, "")
	var reason interface{ Reason() string }
	if !errors.Is(err, projections.ErrUnreadable) || !errors.Is(err, domain.ErrUnavailable) || !errors.As(err, &reason) {
		t.Fatalf("Actors on a damaged file: %v, want ErrUnreadable with a reason", err)
	}
	if _, err := s.Target(ctx, mustTarget(t, "article/a"), nil); err != nil {
		t.Fatalf("an intact table still reads: %v", err)
	}
}

// TestOpenRefusesViewsOfADivergedLog: a log restored from an older copy
// that has grown again past the views file's checkpoint (a PostgreSQL
// schema restored under running nodes, a node restarted after the others
// wrote) holds other events at the positions the views file applied. A
// server must refuse it like a views file ahead: caught up, it would add
// the new events onto counts the log never had.
func TestOpenRefusesViewsOfADivergedLog(t *testing.T) {
	ctx := context.Background()
	big, diverged := MustStore(t), MustStore(t)
	MustGenerate(t, big, 300)
	MustGenerate(t, diverged, 20)
	// Past the restore point the log took other events: here of a kind the
	// views file never saw, so none can match its last row by chance.
	_, err := loggen.Generate(ctx, diverged, loggen.Config{
		Events: 300, Users: 5, Targets: 5, Workers: 4, Kinds: domain.MustKindSet("follow"), Seed: 9,
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "big.views")
	if _, err := projections.BuildAsOf(ctx, big, path, kinds, projections.AsOf{Position: 300}, nil, nil); err != nil {
		t.Fatal(err)
	}
	restored := sameLog{diverged, big.LogID()}
	_, err = projections.Open(ctx, projections.Config{Path: path, Kinds: kinds, RebuildBehind: true}, restored, nil)
	if !errors.Is(err, projections.ErrDiverged) || !strings.Contains(err.Error(), "ledger rebuild") {
		t.Fatalf("a server opening views at 300 over a log that took other events: %v, want ErrDiverged", err)
	}
}

// headAt is a store whose head reads as head: the log restored from an
// older copy under a running process.
type headAt struct {
	*sqlite.EventStore
	head int64
}

func (s headAt) LastPosition(context.Context) (int64, error) { return s.head, nil }

// TestWatchHeadStopsALogThatMovedBack: a log restored from an older copy
// under a running server (a PostgreSQL schema dropped and restored from a
// dump keeps its identity) takes again positions the views file applied,
// with other events. The set must stop applying and reading for good once
// it sees the head behind what it applied: the readiness check saw it only
// while the head stayed behind, and the next events past the old position
// were then applied onto counts the log no longer had.
func TestWatchHeadStopsALogThatMovedBack(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := MustStore(t)
	MustGenerate(t, store, 300)
	s, err := projections.Open(ctx, projections.Config{Path: filepath.Join(t.TempDir(), "v.views"), Kinds: kinds, RebuildBehind: true}, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	go s.WatchHead(ctx, headAt{store, 20}, 10*time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for s.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Err(); !errors.Is(err, projections.ErrLogBehind) || !strings.Contains(err.Error(), "restart") {
		t.Fatalf("Err with the head at 20 and 300 applied: %v, want ErrLogBehind naming the remedy", err)
	}
	tg, _ := domain.NewTarget("article", "a1")
	if _, err := s.Target(ctx, tg, nil); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("a read once the log moved back: %v, want ErrUnavailable", err)
	}
	if err := s.Stopped(); !errors.Is(err, projections.ErrUnreadable) || !errors.Is(err, projections.ErrLogBehind) {
		t.Fatalf("Stopped once the log moved back: %v, want ErrUnreadable naming ErrLogBehind", err)
	}
	user, _ := domain.NewUserID("u1")
	next := domain.Event{ID: domain.NewEventID(), Type: domain.EventAdded, Kind: kinds.Kinds()[0], User: user, Target: tg, StreamVersion: 1, Position: 301}
	if err := s.ApplyAll(ctx, nil, []domain.Event{next}); !errors.Is(err, projections.ErrFailed) || s.Applied() != 300 {
		t.Fatalf("an event past 300 applied once the log moved back: %v, applied %d", err, s.Applied())
	}
}

// TestOtherLogEmptyNamesTheWAL: a SQLite log copied without its -wal while
// a server ran holds no event; a server opening it makes it a new, empty
// log. Its views file, copied along, is another log's, and the refusal
// said only "rebuild it from this log", which left the site empty. Over an
// empty log it must say that the log holds nothing and how to copy one.
func TestOtherLogEmptyNamesTheWAL(t *testing.T) {
	ctx := context.Background()
	big, empty := MustStore(t), MustStore(t)
	MustGenerate(t, big, 50)
	path := filepath.Join(t.TempDir(), "big.views")
	if _, err := projections.BuildAsOf(ctx, big, path, kinds, projections.AsOf{Position: 50}, nil, nil); err != nil {
		t.Fatal(err)
	}
	_, err := projections.Open(ctx, projections.Config{Path: path, Kinds: kinds, RebuildBehind: true}, empty, nil)
	if !errors.Is(err, projections.ErrOtherLog) || !strings.Contains(err.Error(), "-wal") {
		t.Fatalf("views of a log of 50 over an empty log: %v, want ErrOtherLog naming the -wal", err)
	}
}
