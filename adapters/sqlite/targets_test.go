package sqlite

import (
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/sqlite/sqlitetest"
	"github.com/interactionledger/ledger/adapters/storetest"
	"github.com/interactionledger/ledger/domain"
)

// targetLog builds a history over targetUsers users and the targets of
// targetNames: the first appends create every stream (in a scrambled
// order), later ones toggle a kind of an existing stream, two kinds.
type targetLog struct {
	versions map[domain.StreamID]int64
	states   map[domain.StreamID]domain.State
	n        int
}

const targetUsers = 12

var targetNames = []string{"article/a0", "article/a1", "article/a2", "article/a3", "video/v0",
	"video/v1", "video/v2", "photo/p0", "photo/p1"}

// targetStreamCount is how many streams a targetLog has.
var targetStreamCount = targetUsers * len(targetNames)

func newTargetLog() *targetLog {
	return &targetLog{versions: map[domain.StreamID]int64{}, states: map[domain.StreamID]domain.State{}}
}

// next returns the next append of the history.
func (l *targetLog) next(t *testing.T) domain.AppendRequest {
	t.Helper()
	k := l.n * 7 % targetStreamCount // 7 is prime to the count: every stream in turn
	l.n++
	st := storetest.MustStream(t, "u"+strconv.Itoa(k%targetUsers), targetNames[k/targetUsers])
	v := l.versions[st]
	kind := storetest.MustKind(t, []string{"like", "collect"}[v/2%2])
	state := l.states[st]
	typ := domain.EventAdded
	if state.Active(kind) {
		typ = domain.EventCancelled
	}
	e := domain.Event{ID: domain.NewEventID(), Type: typ, Kind: kind, User: st.User, Target: st.Target,
		StreamVersion: v + 1, OccurredAt: time.Now()}
	l.versions[st], l.states[st] = v+1, domain.Evolve(state, e)
	return domain.AppendRequest{Stream: st, ExpectedVersion: v, Events: []domain.Event{e}, State: l.states[st]}
}

// appendLone appends the log's next n appends one after another.
func (l *targetLog) appendLone(t *testing.T, s *EventStore, n int) {
	t.Helper()
	for range n {
		storetest.MustAppend(t, s, l.next(t))
	}
}

// appendConcurrent appends the log's next n appends from n goroutines at
// once, so that they share group commits; n must not go past the streams'
// creation (each stream at most once).
func (l *targetLog) appendConcurrent(t *testing.T, s *EventStore, n int) {
	t.Helper()
	if l.n+n > targetStreamCount {
		t.Fatalf("appendConcurrent: %d appends after %d would append to a stream twice", n, l.n)
	}
	reqs := make([]domain.AppendRequest, n)
	for i := range reqs {
		reqs[i] = l.next(t)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, req := range reqs {
		wg.Go(func() { _, errs[i] = s.Append(t.Context(), req) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// referenceRead is f applied to the whole log by a scan, in Go: what a
// read by target must return, however much of the target index is built.
func referenceRead(t *testing.T, s *EventStore, f domain.EventFilter) []domain.Event {
	t.Helper()
	var out []domain.Event
	for _, e := range storetest.MustReadAll(t, s, domain.EventFilter{}) {
		match := e.Position > f.After && (f.User.IsZero() || e.User == f.User) &&
			(f.TargetType == "" || e.Target.Type() == f.TargetType) &&
			(f.TargetID == "" || e.Target.ID() == f.TargetID) && (f.Kind.IsZero() || e.Kind == f.Kind)
		if match && (f.Limit == 0 || len(out) < f.Limit) {
			out = append(out, e)
		}
	}
	return out
}

// checkTargetReads compares reads by target and by user, with every other
// filter and with limits, with the reference scan, event by event, and
// checks that they found wantEvents events in all.
func checkTargetReads(t *testing.T, s *EventStore, wantEvents int) {
	t.Helper()
	if all := storetest.MustReadAll(t, s, domain.EventFilter{}); len(all) != wantEvents {
		t.Fatalf("the log holds %d events, want %d", len(all), wantEvents)
	}
	like := storetest.MustKind(t, "like")
	user := storetest.MustStream(t, "u"+strconv.Itoa(wantEvents%targetUsers), targetNames[0]).User
	for _, name := range targetNames {
		typ, id, _ := strings.Cut(name, "/")
		for _, f := range []domain.EventFilter{
			{TargetType: typ, TargetID: id}, {TargetType: typ}, {TargetType: typ, TargetID: id, Kind: like},
			{TargetType: typ, TargetID: id, After: int64(wantEvents / 2)}, {TargetType: typ, TargetID: id, Limit: 3},
			{TargetType: typ, Limit: 5, After: 7},
			{User: user, TargetType: typ, TargetID: id}, {User: user, TargetType: typ}, {User: user, TargetID: id},
			{User: user}, {User: user, Kind: like, Limit: 4}, {User: user, After: int64(wantEvents / 3)},
		} {
			got, want := storetest.MustReadAll(t, s, f), referenceRead(t, s, f)
			if len(want) == 0 && f.After == 0 && f.User.IsZero() {
				t.Fatalf("%+v: the reference finds no event; the history does not cover this target", f)
			}
			if len(got) != len(want) {
				t.Fatalf("%+v: read %d events, the reference %d", f, len(got), len(want))
			}
			for i := range want {
				if got[i].ID != want[i].ID || got[i].Position != want[i].Position || got[i].Target != want[i].Target {
					t.Fatalf("%+v: event %d is %d %s, the reference's %d %s", f, i,
						got[i].Position, got[i].Target, want[i].Position, want[i].Target)
				}
			}
		}
	}
}

// watermark returns the stream indexes' watermark in the file at path and
// checks their invariant: stream_targets and stream_users each hold
// exactly the streams whose key is at most the watermark, each under its
// own identity, and no two streams share an identity.
func watermark(t *testing.T, path string) int64 {
	t.Helper()
	db := sqlitetest.DB(t, path)
	var through, targets, users, below, targetsMatching, usersMatching, twins int64
	err := db.QueryRow(`SELECT (SELECT through FROM stream_targets_through),
		(SELECT count(*) FROM stream_targets), (SELECT count(*) FROM stream_users),
		(SELECT count(*) FROM streams WHERE stream_key <= (SELECT through FROM stream_targets_through)),
		(SELECT count(*) FROM stream_targets x JOIN streams s ON s.stream_key = x.stream_key
			AND s.target_type = x.target_type AND s.target_id = x.target_id),
		(SELECT count(*) FROM stream_users x JOIN streams s ON s.stream_key = x.stream_key
			AND s.user_id = x.user_id AND s.target_type = x.target_type AND s.target_id = x.target_id),
		(SELECT count(*) FROM (SELECT 1 FROM streams GROUP BY user_id, target_type, target_id HAVING count(*) > 1))`).
		Scan(&through, &targets, &users, &below, &targetsMatching, &usersMatching, &twins)
	if err != nil {
		t.Fatal(err)
	}
	if targets != below || targetsMatching != targets || users != below || usersMatching != users || twins != 0 {
		t.Fatalf("watermark %d, %d streams at or below it: %d in stream_targets (%d under their own target), "+
			"%d in stream_users (%d under their own identity); %d identities with two streams",
			through, below, targets, targetsMatching, users, usersMatching, twins)
	}
	return through
}

// checkSnapshots compares the snapshot of every stream of the history and
// of one that has no events with what the history wrote.
func checkSnapshots(t *testing.T, s *EventStore, l *targetLog) {
	t.Helper()
	for st, v := range l.versions {
		snap, err := s.Snapshot(t.Context(), st)
		if err != nil {
			t.Fatal(err)
		}
		if snap.Version != v || snap.State.String() != l.states[st].String() || snap.LastPosition == 0 {
			t.Fatalf("snapshot of %s: version %d, state %v, position %d; want version %d, state %v",
				st, snap.Version, snap.State, snap.LastPosition, v, l.states[st])
		}
	}
	unknown := storetest.MustStream(t, "nobody", targetNames[0])
	if snap, err := s.Snapshot(t.Context(), unknown); err != nil || snap.Version != 0 || snap.LastPosition != 0 {
		t.Fatalf("snapshot of a stream with no events: %+v, %v", snap, err)
	}
}

// TestTargetIndex: reads by target equal a full scan whatever part of the
// streams the target index holds, and the writer moves the watermark once
// Config.TargetIndexEvery streams wait.
func TestTargetIndex(t *testing.T) {
	t.Run("NotIndexed", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		s := MustOpen(t, Config{Path: path, TargetIndexEvery: 1 << 20})
		l := newTargetLog()
		l.appendLone(t, s, 150)
		checkTargetReads(t, s, 150)
		checkSnapshots(t, s, l)
		if through := watermark(t, path); through != 0 {
			t.Fatalf("watermark %d, want 0: nothing reached the threshold", through)
		}
	})
	t.Run("Indexed", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		s := MustOpen(t, Config{Path: path, TargetIndexEvery: 1})
		l := newTargetLog()
		l.appendLone(t, s, 150)
		checkTargetReads(t, s, 150)
		checkSnapshots(t, s, l)
		if through := watermark(t, path); through != int64(targetStreamCount) {
			t.Fatalf("watermark %d, want %d: every commit indexes its new stream", through, targetStreamCount)
		}
	})
	t.Run("HalfIndexed", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		s := MustOpen(t, Config{Path: path, TargetIndexEvery: 10})
		l := newTargetLog()
		l.appendLone(t, s, 25)
		if through := watermark(t, path); through != 20 {
			t.Fatalf("after 25 new streams one by one, watermark %d, want 20", through)
		}
		checkTargetReads(t, s, 25)
		checkSnapshots(t, s, l)
		l.appendConcurrent(t, s, 64)
		if through := watermark(t, path); through < 80 {
			t.Fatalf("after 89 new streams, watermark %d, want at least 80", through)
		}
		l.appendLone(t, s, 40)
		checkTargetReads(t, s, 129)
		checkSnapshots(t, s, l)
	})
}

// TestTargetIndexReopen: the index and its tail survive a close and a
// crash (a copy of the file and its WAL taken between two commits, as a
// kill leaves them), and the reopened writer goes on indexing from the
// stored watermark.
func TestTargetIndexReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ledger.db")
	s, err := Open(t.Context(), Config{Path: path, TargetIndexEvery: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := newTargetLog()
	l.appendLone(t, s, 37)
	crashed := filepath.Join(dir, "crashed.db")
	copyFile(t, path, crashed)
	copyFile(t, path+"-wal", crashed+"-wal")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, crashed} {
		if through := watermark(t, p); through != 30 {
			t.Fatalf("%s: watermark %d, want 30", filepath.Base(p), through)
		}
		r := MustOpen(t, Config{Path: p, TargetIndexEvery: 10})
		checkTargetReads(t, r, 37)
		again := *l
		again.versions, again.states = clone(l.versions), clone(l.states)
		checkSnapshots(t, r, l)
		again.appendLone(t, r, 80)
		checkTargetReads(t, r, 117)
		checkSnapshots(t, r, &again)
		if through := watermark(t, p); through != 100 {
			t.Fatalf("%s: after 80 more appends, watermark %d, want 100", filepath.Base(p), through)
		}
	}
}

func clone[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestTargetIndexTwoWriters: two stores writing one file index each
// other's streams, reading the watermark inside their transactions, and
// reads from either equal the reference.
func TestTargetIndexTwoWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	a := MustOpen(t, Config{Path: path, TargetIndexEvery: 7})
	b := MustOpen(t, Config{Path: path, TargetIndexEvery: 7})
	l := newTargetLog()
	for i := range 60 {
		storetest.MustAppend(t, []*EventStore{a, b}[i%2], l.next(t))
	}
	l.appendConcurrent(t, a, 20)
	l.appendConcurrent(t, b, 20)
	for i := range 60 {
		storetest.MustAppend(t, []*EventStore{a, b}[i/3%2], l.next(t))
	}
	checkTargetReads(t, a, 160)
	checkTargetReads(t, b, 160)
	checkSnapshots(t, a, l)
	checkSnapshots(t, b, l)
	if through := watermark(t, path); through < int64(targetStreamCount)-7 {
		t.Fatalf("watermark %d of %d streams, want at most 7 waiting", through, targetStreamCount)
	}
}

// TestMigrateTargetIndex: a file of the first schema (0001, with the
// streams_target index) opens read-only with a clear error, and a writable
// open migrates it: every stream in stream_targets, the watermark at the
// last key, streams_target gone, reads by target as before.
func TestMigrateTargetIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	l := newTargetLog()
	events := writeFirstSchema(t, path, l, 140, false)
	_, err := OpenReadOnly(t.Context(), path, nil)
	if !errors.Is(err, domain.ErrUnavailable) || !strings.Contains(err.Error(), "schema version 1") ||
		!strings.Contains(err.Error(), "run `ledger serve` (or `ledger import`) on it once to migrate it") {
		t.Fatalf("read-only open of a 0001 file: %v, want ErrUnavailable naming schema version 1 and how to migrate it", err)
	}
	s := MustOpen(t, Config{Path: path})
	checkTargetReads(t, s, events)
	if through := watermark(t, path); through != int64(targetStreamCount) {
		t.Fatalf("migrated watermark %d, want %d", through, targetStreamCount)
	}
	var n int
	if err := sqlitetest.DB(t, path).QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'streams_target'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("streams_target: %d (%v), want dropped", n, err)
	}
	checkSnapshots(t, s, l)
	l.appendLone(t, s, 10)
	checkTargetReads(t, s, events+10)
	checkSnapshots(t, s, l)
}

// writeFirstSchema creates a file at path with migration 0001 alone, as an
// older build left it, holding the log's first n appends written by plain
// SQL, and returns the number of events.
func writeFirstSchema(t *testing.T, path string, l *targetLog, n int, fk bool) int {
	t.Helper()
	all, err := embedded()
	if err != nil {
		t.Fatal(err)
	}
	first := all[:1]
	if fk {
		// The first builds' 0001 declared events.stream_key a foreign key.
		const col = "    stream_key     INTEGER NOT NULL,\n    stream_version"
		if !strings.Contains(first[0].SQL, col) {
			t.Fatal("0001 changed: no events.stream_key column to declare a foreign key")
		}
		first = []migration{first[0]}
		first[0].SQL = strings.Replace(first[0].SQL, col, "    stream_key     INTEGER NOT NULL REFERENCES streams (stream_key),\n    stream_version", 1)
	}
	db := sqlitetest.DB(t, path)
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, _, err := applyMigrations(t.Context(), conn, first, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		writeFirstSchemaAppend(t, conn, l.next(t), int64(i+1))
	}
	return n
}

// writeFirstSchemaAppend writes a one-event append at position pos as the
// writer of the first schema did.
func writeFirstSchemaAppend(t *testing.T, conn *sql.Conn, req domain.AppendRequest, pos int64) {
	t.Helper()
	st, e := req.Stream, req.Events[0]
	var key int64
	err := conn.QueryRowContext(t.Context(), `INSERT INTO streams
		(stream_key, user_id, target_type, target_id, version, last_position, state)
		VALUES ((SELECT coalesce(max(stream_key), 0) + 1 FROM streams), ?, ?, ?, ?, ?, ?)
		ON CONFLICT (user_id, target_type, target_id) DO UPDATE
		SET version = excluded.version, last_position = excluded.last_position, state = excluded.state
		RETURNING stream_key`,
		st.User.String(), st.Target.Type(), st.Target.ID(), e.StreamVersion, pos, req.State.String()).Scan(&key)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.ExecContext(t.Context(), `INSERT INTO events
		(position, id, stream_key, stream_version, type, kind, occurred_at, recorded_at, metadata)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
		pos, e.ID[:], key, e.StreamVersion, string(e.Type), e.Kind.String(), e.OccurredAt.UnixNano(), time.Now().UnixNano())
	if err != nil {
		t.Fatal(err)
	}
}

// TestMigrateFirstBuildsForeignKey: a log of the first builds, whose
// events.stream_key was declared a foreign key of streams, migrates (the
// streams table is rebuilt with foreign keys off, then checked), and reads,
// snapshots and appends go on; it failed with "FOREIGN KEY constraint
// failed".
func TestMigrateFirstBuildsForeignKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	l := newTargetLog()
	events := writeFirstSchema(t, path, l, 60, true)
	s := MustOpen(t, Config{Path: path})
	checkTargetReads(t, s, events)
	checkSnapshots(t, s, l)
	l.appendLone(t, s, 20)
	checkTargetReads(t, s, events+20)
	checkSnapshots(t, s, l)
}

// TestRefusesNewerSchema: a log a newer build migrated (a version this
// build does not know) is refused, writable or not, and left as it was:
// this build would write it without what the newer one keeps beside it.
func TestRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s := MustOpen(t, Config{Path: path})
	storetest.MustAppend(t, s, newTargetLog().next(t))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlitetest.DB(t, path).Exec(`INSERT INTO schema_migrations VALUES (99, '0099_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	for _, readOnly := range []bool{false, true} {
		_, err := Open(t.Context(), Config{Path: path, ReadOnly: readOnly}, nil)
		if !errors.Is(err, domain.ErrUnavailable) || !strings.Contains(err.Error(), "99") || !strings.Contains(err.Error(), "a newer build migrated it") {
			t.Fatalf("open (read-only %t) of a log at schema 99: %v, want ErrUnavailable naming it and the newer build", readOnly, err)
		}
	}
	var n int
	if err := sqlitetest.DB(t, path).QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the refused log holds %d events (%v), want 1", n, err)
	}
}

// TestTargetReadPlan: a read by target or by user, and a snapshot of a
// stream outside the writer's tail, search a stream index and read the
// waiting streams by a range of keys; they scan no table but the
// watermark's one row.
func TestTargetReadPlan(t *testing.T) {
	s := MustOpen(t, Config{Path: filepath.Join(t.TempDir(), "ledger.db")})
	user := storetest.MustUser(t, "u1")
	byTarget, targetArgs := eventQuery(domain.EventFilter{TargetType: "article", TargetID: "a1"})
	byUser, userArgs := eventQuery(domain.EventFilter{User: user, TargetType: "article"})
	for _, c := range []struct {
		name, query string
		args        []any
		index       string
	}{
		{"by target", byTarget, targetArgs, "SEARCH stream_targets USING PRIMARY KEY (target_type=? AND target_id=?)"},
		{"by user", byUser, userArgs, "SEARCH stream_users USING PRIMARY KEY (user_id=? AND target_type=?)"},
		{"snapshot", sqlSnapshot, []any{"u1", "article", "a1", 0},
			"SEARCH stream_users USING PRIMARY KEY (user_id=? AND target_type=? AND target_id=?)"},
	} {
		text, plan := queryPlan(t, s, c.query, c.args)
		for _, want := range []string{c.index, "SEARCH streams USING INTEGER PRIMARY KEY (rowid>?)"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: plan lacks %q:\n%s", c.name, want, text)
			}
		}
		for _, line := range plan {
			if strings.HasPrefix(line, "SCAN ") && line != "SCAN stream_targets_through" {
				t.Errorf("%s: plan scans a table (%s):\n%s", c.name, line, text)
			}
		}
	}
}

// queryPlan returns the lines of q's query plan, joined and apart.
func queryPlan(t *testing.T, s *EventStore, q string, args []any) (string, []string) {
	t.Helper()
	rows, err := s.read.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "\n"), plan
}

// TestStreamIdentity: a stream is created once, however its identity is
// held when it is appended to again: in stream_users, in the writer's
// tail, in a tail reloaded at open, or only in the file, written by
// another store on the same file since this one's last commit. An append
// that expects it new fails with a version conflict there, and Snapshot
// finds it from either store.
func TestStreamIdentity(t *testing.T) {
	for _, every := range []int{1, 1 << 20} {
		t.Run("TargetIndexEvery="+strconv.Itoa(every), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ledger.db")
			first := MustOpen(t, Config{Path: path, TargetIndexEvery: every})
			l := newTargetLog()
			l.appendLone(t, first, 20)
			if err := first.Close(); err != nil {
				t.Fatal(err)
			}
			a := MustOpen(t, Config{Path: path, TargetIndexEvery: every}) // its tail read from the file
			b := MustOpen(t, Config{Path: path, TargetIndexEvery: every})
			checkSnapshots(t, a, l)
			l.appendLone(t, b, 20) // new streams, which a has not seen
			checkSnapshots(t, a, l)
			for st, v := range l.versions {
				for _, s := range []*EventStore{a, b} {
					again := l.restart(t, st)
					if _, err := s.Append(t.Context(), again); !errors.Is(err, domain.ErrVersionConflict) {
						t.Fatalf("append to %s (at version %d) expecting a new stream: %v, want a version conflict", st, v, err)
					}
				}
			}
			l.appendLone(t, a, 40)
			checkSnapshots(t, b, l)
			checkTargetReads(t, b, 80)
			watermark(t, path)
		})
	}
}

// restart returns a one-event append to st that expects st to be new.
func (l *targetLog) restart(t *testing.T, st domain.StreamID) domain.AppendRequest {
	t.Helper()
	kind := storetest.MustKind(t, "like")
	e := domain.Event{ID: domain.NewEventID(), Type: domain.EventAdded, Kind: kind, User: st.User,
		Target: st.Target, StreamVersion: 1, OccurredAt: time.Now()}
	return domain.AppendRequest{Stream: st, Events: []domain.Event{e}, State: domain.Evolve(domain.State{}, e)}
}

// TestMigrateStreamUsers: a file of schema 0002, some of its streams
// after the target index's watermark, migrates to 0003: stream_users and
// stream_targets hold every stream, the watermark is at the last key,
// streams keeps its rows without its (user, target) index, and reads,
// snapshots and appends go on as before.
func TestMigrateStreamUsers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	l := newTargetLog()
	events := writeFirstSchema(t, path, l, 60, false)
	all, err := embedded()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := sqlitetest.DB(t, path).Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := applyMigrations(t.Context(), conn, all[:2], slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	for i := range 50 { // new streams and toggles, after the watermark
		writeFirstSchemaAppend(t, conn, l.next(t), int64(events+i+1))
	}
	events += 50
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	s := MustOpen(t, Config{Path: path})
	if through := watermark(t, path); through != int64(targetStreamCount) {
		t.Fatalf("migrated watermark %d, want %d", through, targetStreamCount)
	}
	var uniques int
	err = sqlitetest.DB(t, path).QueryRow(`SELECT count(*) FROM pragma_index_list('streams')`).Scan(&uniques)
	if err != nil || uniques != 0 {
		t.Fatalf("streams has %d indexes (%v), want none", uniques, err)
	}
	checkTargetReads(t, s, events)
	checkSnapshots(t, s, l)
	l.appendLone(t, s, 30)
	checkTargetReads(t, s, events+30)
	checkSnapshots(t, s, l)
}
