package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	neturl "net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/logcopy"
	"github.com/interactionledger/ledger/adapters/postgres/pgtest"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/dburl"
	"github.com/interactionledger/ledger/internal/testlog"
	"github.com/interactionledger/ledger/projections"
)

// h1Schema is a schema of the test's own, dropped when it ends.
func h1Schema(t *testing.T) string {
	t.Helper()
	s := "h1_" + strings.TrimPrefix(pgtest.Schema(t), "lt_")
	pgtest.DropAtCleanup(t, s)
	return s
}

// mustImportLog moves the log at src into dest, or fails t.
func mustImportLog(t *testing.T, src, dest string) string {
	t.Helper()
	out, errOut, err := runCLI(t, "import", "log", src, "--db", dest)
	if err != nil {
		t.Fatalf("import log %s --db %s: %v\n%s", src, dest, err, errOut)
	}
	return out
}

func mustHistory(t *testing.T, db string) string {
	t.Helper()
	out, errOut, err := runCLI(t, "history", "--db", db, "--format", "ndjson")
	if err != nil {
		t.Fatalf("history --db %s: %v\n%s", db, err, errOut)
	}
	return out
}

func logIDAt(t *testing.T, db string) string {
	t.Helper()
	store := mustOpenStore(t, db, storeOptions{readOnly: true})
	defer store.Close()
	return store.LogID()
}

// TestImportLogToPostgresAndBack moves a SQLite log to PostgreSQL and
// back: every event (history's ndjson, every field) and the log's
// identity equal; a views file built on the source opens on the copy
// without a rebuild; an idempotent retry answers its first outcome; the
// next write gets the head + 1; the source refuses writes naming where
// the log went (a serve on it does not start), and its reads work.
func TestImportLogToPostgresAndBack(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "ledger.db")
	mustFill(t, src, 30)
	u, _ := domain.NewUserID("retrier")
	tg, _ := domain.ParseTarget("article/a1")
	like, _ := domain.ParseKind("like")
	md := domain.MustMetadata(map[string]string{"note": "ünïcode 'q'"})
	retry := domain.SetRequest{User: u, Target: tg, Kind: like, On: true, IdempotencyKey: "k-1", Metadata: md}
	l, done := mustLedgerAt(t, src)
	first, err := l.Set(t.Context(), retry)
	done()
	if err != nil {
		t.Fatal(err)
	}
	views := filepath.Join(dir, "node.views")
	if _, errOut, err := runCLI(t, "rebuild", "--db", src, "--views", views); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, errOut)
	}
	pg := pgtest.WithSchema(pgtest.URL(t), h1Schema(t))

	out := mustImportLog(t, src, pg)
	mustContain(t, out, "61 events (head 61", "31 streams", "1 idempotency records", "checked:", "events/s", "is sealed")
	if mustHistory(t, pg) != mustHistory(t, src) {
		t.Fatal("the events of the copy differ from the source's")
	}
	if logIDAt(t, pg) != logIDAt(t, src) {
		t.Fatal("the copy has another identity than the source")
	}

	store := mustOpenStore(t, pg, storeOptions{})
	rebuilt := false
	set, err := projections.Open(t.Context(), projections.Config{Path: views, Kinds: domain.MustKindSet("like", "collect"),
		OnProgress: func(projections.Progress) { rebuilt = true }}, store, nil)
	if err != nil {
		t.Fatalf("the source's views file on the copy: %v", err)
	}
	if rebuilt || set.Applied() != 61 {
		t.Fatalf("the source's views file on the copy: rebuilt %t, applied %d; want no rebuild at 61", rebuilt, set.Applied())
	}
	if err := set.Close(); err != nil {
		t.Fatal(err)
	}
	l = domain.NewLedger(store, domain.MustKindSet("like", "collect"), domain.LedgerConfig{}, nil)
	again, err := l.Set(t.Context(), retry)
	if head, _ := store.LastPosition(t.Context()); err != nil || fmt.Sprint(again) != fmt.Sprint(first) || head != 61 {
		t.Fatalf("the retry on the copy: %+v, %v; want the first outcome %+v", again, err, first)
	}
	u2, _ := domain.NewUserID("after")
	next, err := l.Set(t.Context(), domain.SetRequest{User: u2, Target: tg, Kind: like, On: true})
	if err != nil || next.Position != 62 {
		t.Fatalf("a write on the copy: %+v, %v; want position 62", next, err)
	}
	store.Close()

	checkSealed(t, src, dburl.Redact(pg))
	if out := mustHistory(t, src); strings.Count(out, "\n") != 61 {
		t.Fatalf("history of the sealed source: %d events, want 61", strings.Count(out, "\n"))
	}
	if out, errOut, err := runCLI(t, "stats", "--db", src); err != nil || !strings.Contains(out, "61") {
		t.Fatalf("stats of the sealed source: %v\n%s%s", err, out, errOut)
	}

	back := filepath.Join(dir, "back.db")
	mustContain(t, mustImportLog(t, pg, back), "62 events (head 62")
	if mustHistory(t, back) != mustHistory(t, pg) || logIDAt(t, back) != logIDAt(t, src) {
		t.Fatal("the log moved back differs")
	}
	checkSealed(t, pg, back)
	l, done = mustLedgerAt(t, back)
	defer done()
	if next, err := l.Set(t.Context(), domain.SetRequest{User: u2, Target: tg, Kind: like, On: false}); err != nil || next.Position != 63 {
		t.Fatalf("a write on the log moved back: %+v, %v; want position 63", next, err)
	}
}

// checkSealed checks that the commands that write db refuse it, exit 2,
// naming where the log went.
func checkSealed(t *testing.T, db, movedTo string) {
	t.Helper()
	for _, args := range [][]string{
		{"import", "legacy", "--on-error", "skip", legacySample, "--db", db},
		{"import", "log", db, "--db", filepath.Join(t.TempDir(), "again.db")},
		{"serve", "--db", db, "--listen", "127.0.0.1:0", "--views", filepath.Join(t.TempDir(), "v")},
	} {
		err := runStopped(t, args...)
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "moved to "+movedTo) {
			t.Errorf("%s on a sealed log: %v; want exit 2 naming %s", args[0], err, movedTo)
		}
	}
}

// TestServeOnASealedLogRefusedBeforeListening: serve on a sealed log
// refuses it, exit 2 naming where it went, before it listens. It listened
// and logged "starting" (answering 503 starting meanwhile), then refused
// once the log was open.
func TestServeOnASealedLogRefusedBeforeListening(t *testing.T) {
	dir := t.TempDir()
	src, dest := filepath.Join(dir, "ledger.db"), filepath.Join(dir, "dest.db")
	mustFill(t, src, 3)
	mustImportLog(t, src, dest)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var errOut testlog.Buffer
	err := run(ctx, []string{"serve", "--db", src, "--listen", "127.0.0.1:0", "--views", filepath.Join(dir, "v")},
		func(string) string { return "" }, io.Discard, &errOut)
	if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "moved to "+dest) {
		t.Fatalf("serve on a sealed log: %v; want exit 2 naming %s", err, dest)
	}
	for _, line := range []string{"msg=starting", "msg=listening"} {
		if strings.Contains(errOut.String(), line) {
			t.Errorf("serve on a sealed log logged %s before it refused:\n%s", line, errOut.String())
		}
	}
}

// logWithViews makes dir/ledger.db, a log of 6 events, and its views
// file dir/ledger.views (a SQLite file without an event log).
func logWithViews(t *testing.T, dir string) (src, views string) {
	t.Helper()
	src, views = filepath.Join(dir, "ledger.db"), filepath.Join(dir, "ledger.views")
	mustFill(t, src, 3)
	if _, errOut, err := runCLI(t, "rebuild", "--db", src, "--views", views); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, errOut)
	}
	return src, views
}

// TestImportLogRefusals: a destination that holds events, a source that
// is missing, no log, a CSV or the destination itself: exit 2 naming it,
// nothing written.
func TestImportLogRefusals(t *testing.T) {
	dir := t.TempDir()
	src, views := logWithViews(t, dir)
	dest := filepath.Join(dir, "dest.db")
	mustLiveLike(t, dest, "someone", "article/x")
	id := logIDAt(t, dest)
	for _, c := range []struct{ src, dest, says string }{
		{src, dest, "--db " + dest + ": the destination log is not empty"},
		{filepath.Join(dir, "missing.db"), filepath.Join(dir, "new.db"), "missing.db: no such file"},
		{views, filepath.Join(dir, "new.db"), "but no event log"},
		{legacySample, filepath.Join(dir, "new.db"), "not a SQLite database"},
		{src, src, "the same log"},
		{src, dir + "/./ledger.db", "the same log"},
		{"Postgres://u:s3cret@127.0.0.1/db", filepath.Join(dir, "new.db"), "in lower case"},
		{"mysql://u:s3cret@127.0.0.1/db", filepath.Join(dir, "new.db"), "a URL of scheme"},
	} {
		_, _, err := runCLI(t, "import", "log", c.src, "--db", c.dest)
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), c.says) || strings.Contains(fmt.Sprint(err), "s3cret") {
			t.Errorf("import log %s --db %s: %v; want exit 2 saying %q", c.src, c.dest, err, c.says)
		}
	}
	if logHead(t, dest) != 1 || logIDAt(t, dest) != id {
		t.Fatal("the refused import changed the destination")
	}
	mustLiveLike(t, src, "still", "article/writable") // not sealed
}

// TestImportLogPostgresRefusals: a schema with no log, and the same
// schema as the destination under another URL.
func TestImportLogPostgresRefusals(t *testing.T) {
	url := pgtest.URL(t)
	empty := pgtest.WithSchema(url, h1Schema(t))
	_, _, err := runCLI(t, "import", "log", empty, "--db", filepath.Join(t.TempDir(), "x.db"))
	if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "no ledger store in schema") {
		t.Errorf("import log from a schema with no log: %v; want exit 2", err)
	}
	_, _, err = runCLI(t, "import", "log", "postgres://secret:SECRET@127.0.0.1:5432", "--db", filepath.Join(t.TempDir(), "x.db"))
	if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "import log \"postgres://secret:xxxxx@127.0.0.1:5432\" names no database") {
		t.Errorf("import log from a URL naming no database: %v; want exit 2 naming it without its password", err)
	}
	pg := pgtest.WithSchema(url, h1Schema(t))
	mustLiveLike(t, pg, "someone", "article/x")
	_, _, err = runCLI(t, "import", "log", pg, "--db", pg+"&application_name=other")
	if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "the same log") {
		t.Errorf("import log into its own schema: %v; want exit 2", err)
	}
}

// TestImportLogUnderARunningServer: a server running on the SQLite log
// while it moves keeps answering reads, and its writes after the move
// are 503s naming where the log went (the sealed log's triggers), not
// writes into a twin.
func TestImportLogUnderARunningServer(t *testing.T) {
	src := filepath.Join(t.TempDir(), "ledger.db")
	mustFill(t, src, 3)
	s := startServe(t, src, nil)
	if res, body := s.call(t, "PUT", "/v1/targets/article/a-1/like/u42", ""); res.StatusCode != 200 {
		t.Fatalf("a write before the move: %d %s", res.StatusCode, body)
	}
	pg := pgtest.WithSchema(pgtest.URL(t), h1Schema(t))
	mustContain(t, mustImportLog(t, src, pg), "7 events (head 7")
	res, body := s.call(t, "PUT", "/v1/targets/article/a-1/like/u43", "")
	var problem struct{ Detail string }
	if err := json.Unmarshal(body, &problem); err != nil || res.StatusCode != 503 || !strings.Contains(problem.Detail, "moved to "+dburl.Redact(pg)) {
		t.Fatalf("a write after the move: %d %s; want 503 naming %s", res.StatusCode, body, dburl.Redact(pg))
	}
	if res, body := s.call(t, "GET", "/v1/targets/article/a-1", ""); res.StatusCode != 200 {
		t.Fatalf("a read after the move: %d %s", res.StatusCode, body)
	}
	if logHead(t, src) != 7 {
		t.Fatal("the sealed log took a write")
	}
}

// TestImportLogKilled: an import killed (SIGKILL) in the middle of its
// copy leaves the PostgreSQL destination empty (its one transaction
// never committed) and the source unsealed; the import run again moves
// the whole log.
func TestImportLogKilled(t *testing.T) {
	src := filepath.Join(t.TempDir(), "ledger.db")
	if _, errOut, err := runCLI(t, "bench", "generate", "--db", src, "--events", "30000"); err != nil {
		t.Fatalf("bench generate: %v\n%s", err, errOut)
	}
	pg := pgtest.WithSchema(pgtest.URL(t), h1Schema(t))
	c := startChild(t, "import", "log", src, "--db", pg)
	for !strings.Contains(c.stderr.String(), "import log: copy") {
		select {
		case <-c.done:
			t.Fatalf("the import ended before it was killed: %v\n%s", c.err, c.stderr)
		case <-time.After(10 * time.Millisecond):
		}
	}
	c.kill()
	if logHead(t, src) != 30000 {
		t.Fatal("the source changed")
	}
	store := mustOpenStore(t, pg, storeOptions{readOnly: true})
	if n, err := store.LastPosition(t.Context()); err != nil || n != 0 || store.LogID() == logIDAt(t, src) {
		t.Fatalf("the destination after the killed import: head %d (%v), log %s; want empty, its own log", n, err, store.LogID())
	}
	store.Close()
	mustLiveLike(t, src, "still", "article/writable") // not sealed
	mustContain(t, mustImportLog(t, src, pg), "30001 events (head 30001")
}

// TestSealedLogSaysWhere: every command on a sealed log says that it
// moved, where (the destination's password shown as xxxxx) and when, in
// the same words: those that read it (stats in a row of its own and in its
// JSON, history, verify, rebuild and asof in a note on stderr, their output
// unchanged) and those that refuse it, exit 2 (serve, import legacy,
// import log, relay nats). The read commands said nothing of it.
func TestSealedLogSaysWhere(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "ledger.db")
	mustFill(t, src, 3)
	u, err := neturl.Parse(pgtest.WithSchema(pgtest.URL(t), h1Schema(t)))
	if err != nil {
		t.Fatal(err)
	}
	u.User = neturl.UserPassword(u.User.Username(), "s3cret") // trust: any password
	pg := u.String()
	mustImportLog(t, src, pg)
	moved := readMovedAt(t, src)
	says := "the log moved to " + dburl.Redact(pg) + " at " + moved.UTC().Format(time.RFC3339) + " (ledger import log)"

	var all strings.Builder // every output, for the password
	out, errOut, err := runCLI(t, "stats", "--db", src)
	all.WriteString(out + errOut)
	if err != nil || !strings.Contains(out, "moved  ") || !strings.Contains(out, says) {
		t.Errorf("stats of the sealed log: %v\n%s%s\nwant a row saying %q", err, out, errOut, says)
	}
	out, _, err = runCLI(t, "stats", "--db", src, "--json")
	all.WriteString(out)
	var rep StatsReport
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil || rep.MovedTo != dburl.Redact(pg) || rep.MovedAt == nil || !rep.MovedAt.Equal(moved) {
		t.Errorf("stats --json of the sealed log: %v\n%s\nwant moved_to %s, moved_at %s", err, out, dburl.Redact(pg), moved)
	}
	for _, args := range [][]string{
		{"history", "--format", "ndjson"},
		{"rebuild", "--views", filepath.Join(dir, "r.views")},
		{"verify", "--views", filepath.Join(dir, "r.views")},
		{"asof", "--position", "2", "--out", filepath.Join(dir, "asof.db")},
	} {
		out, errOut, err := runCLI(t, append(args, "--db", src)...)
		all.WriteString(errOut)
		if err != nil || !strings.Contains(errOut, "note: --db "+src+": "+says) {
			t.Errorf("%s on the sealed log: %v\n%s\nwant a note saying %q", args[0], err, errOut, says)
		}
		if args[0] == "history" && strings.Count(out, "\n") != 6 {
			t.Errorf("history of the sealed log: %d events, want 6", strings.Count(out, "\n"))
		}
	}
	for _, c := range []struct {
		args []string
		who  string
	}{
		{[]string{"serve", "--db", src, "--listen", "127.0.0.1:0", "--views", filepath.Join(dir, "v")}, "--db " + src},
		{[]string{"import", "legacy", "--on-error", "skip", legacySample, "--db", src}, "--db " + src},
		{[]string{"import", "log", src, "--db", filepath.Join(dir, "again.db")}, "SOURCE " + src},
		{[]string{"relay", "nats", "--db", src, "--nats", "nats://127.0.0.1:1"}, "--db " + src},
	} {
		err := runStopped(t, c.args...)
		all.WriteString(fmt.Sprint(err))
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), c.who+": "+says+": it takes no writes here, point --db there") {
			t.Errorf("%s on the sealed log: %v; want exit 2 saying %q", c.args[0], err, says)
		}
	}
	if strings.Contains(all.String(), "s3cret") {
		t.Errorf("a password shown:\n%s", all.String())
	}
}

// readMovedAt reads when the log at db was sealed.
func readMovedAt(t *testing.T, db string) time.Time {
	t.Helper()
	store := mustOpenStore(t, db, storeOptions{readOnly: true})
	m, moved, err := store.Moved(t.Context())
	if err != nil || !moved {
		t.Fatalf("the log at %s: moved %t, %v; want sealed", db, moved, err)
	}
	return m.At
}

// holdWriteLock takes the write lock of the SQLite log at db (BEGIN
// IMMEDIATE on a connection of its own), as a server's long burst of
// writes does, and returns the function that releases it.
func holdWriteLock(t *testing.T, db string) (release func()) {
	t.Helper()
	conn, err := sql.Open("sqlite3", db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c, err := conn.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := c.ExecContext(context.Background(), "ROLLBACK"); err != nil {
			t.Error(err)
		}
		c.Close()
	}
}

// TestImportLogWaitsForTheWriter: import log from a SQLite log whose write
// lock another connection holds (a server in a long burst of writes) waits
// for it, saying so on stderr, and moves the log once it is released; with
// the lock held past --lock-wait it fails, exit 1 naming the flag, with
// nothing copied and the source not sealed. It failed after the store's
// busy timeout (5 s), "database is locked", saying nothing meanwhile.
func TestImportLogWaitsForTheWriter(t *testing.T) {
	dir := t.TempDir()
	src, dest := filepath.Join(dir, "ledger.db"), filepath.Join(dir, "dest.db")
	mustFill(t, src, 3)
	release := holdWriteLock(t, src)
	var out bytes.Buffer
	var errOut testlog.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(t.Context(), []string{"import", "log", src, "--db", dest}, func(string) string { return "" }, &out, &errOut)
	}()
	waitUntil(t, "import log to say it waits for the writer", func() bool {
		return strings.Contains(errOut.String(), "waiting for the write lock of "+src)
	})
	release()
	if err := <-done; err != nil || !strings.Contains(out.String(), "6 events (head 6") {
		t.Fatalf("import log once the writer let go: %v\n%s%s", err, out.String(), errOut.String())
	}
	checkSealed(t, src, dest)

	src2, dest2 := filepath.Join(dir, "second.db"), filepath.Join(dir, "dest2.db")
	mustFill(t, src2, 2)
	release = holdWriteLock(t, src2)
	_, errText, err := runCLI(t, "import", "log", src2, "--db", dest2, "--lock-wait", "2s")
	release()
	if exitCode(err) != 1 || !strings.Contains(fmt.Sprint(err), "--lock-wait 2s") || !strings.Contains(errText, "waiting for the write lock") {
		t.Fatalf("import log with the lock held past --lock-wait: %v\n%s; want exit 1 naming --lock-wait 2s", err, errText)
	}
	mustLiveLike(t, src2, "still", "article/writable") // not sealed
	if _, _, err := runCLI(t, "import", "log", src2, "--db", dest2, "--lock-wait", "-1s"); exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "--lock-wait -1s") {
		t.Errorf("--lock-wait -1s: %v; want exit 2 naming it", err)
	}
}

// TestImportLogCopyWaitsForTheWriter: the copy's first step, which takes
// the source's write lock again after the source was opened, waits for a
// writer that took it meanwhile, as the open does.
func TestImportLogCopyWaitsForTheWriter(t *testing.T) {
	src := filepath.Join(t.TempDir(), "ledger.db")
	mustFill(t, src, 1)
	store := mustOpenStore(t, src, storeOptions{busyTimeout: lockTry})
	var errOut testlog.Buffer
	lock := &lockWaiter{e: env{stderr: &errOut}, src: src, wait: time.Hour, start: time.Now()}
	release := holdWriteLock(t, src)
	type begun struct {
		tx  logcopy.Tx
		err error
	}
	done := make(chan begun, 1)
	go func() {
		tx, err := waitingSource{store.copier, lock}.BeginCopy(t.Context())
		done <- begun{tx, err}
	}()
	waitUntil(t, "the copy to say it waits for the writer", func() bool {
		return strings.Contains(errOut.String(), "waiting for the write lock of "+src)
	})
	release()
	b := <-done
	if b.err != nil {
		t.Fatalf("BeginCopy once the writer let go: %v", b.err)
	}
	if head, err := b.tx.Head(t.Context()); err != nil || head != 2 {
		t.Fatalf("the copy's head: %d, %v; want 2", head, err)
	}
	b.tx.Rollback(t.Context())
}
