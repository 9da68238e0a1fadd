package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/postgres/pgtest"
	"github.com/interactionledger/ledger/adapters/sqlite"
	"github.com/interactionledger/ledger/domain"
)

const legacySample = "../../adapters/legacy/testdata/legacy_user_actions.csv"

func TestUsageErrorsExit2(t *testing.T) {
	db := filepath.Join(t.TempDir(), "u.db")
	for _, args := range [][]string{
		{},
		{"nope"},
		{"history", "--format", "xml", "--db", db},
		{"history", "--since", "yesterday", "--db", db},
		{"history", "--since", "2026-01-01T00:00:00+24:00", "--db", db},
		{"history", "--until", "2026-01-01T00:00:00,5Z", "--db", db},
		{"asof", "--db", db, "--time", "2026-01-01T00:00:00+12:60", "--out", filepath.Join(t.TempDir(), "t.db")},
		{"history", "--target", "article", "--db", db},
		{"history", "--user", "u 1", "--db", db},
		{"history", "--after", "-1", "--db", db},
		{"history", "--no-such-flag"},
		{"import", "legacy"},
		{"import", "legacy", legacySample, "--on-error", "maybe", "--db", db},
		{"import", "legacy", legacySample, "--kinds", "Like", "--db", db},
		{"import", "legacy", "/no/such/file.csv", "--db", db},
		{"import", "other", legacySample, "--db", db},
		{"bench", "http", "--zipf", "0.5"},
		{"bench", "http", "--rate", "-5"},
		{"bench", "http", "--rate", "NaN"},
		{"bench", "baseline", "--rate", "many"},
		{"bench", "nope"},
		{"bench", "rebuild", "--events", "0"},
		{"bench", "generate", "--events", "-1", "--db", db},
		{"bench", "http", "--cpuprofile"},
		{"bench", "http", "--floor", "--url", "http://127.0.0.1:1"},
		{"bench", "serve-floor", "--listen"},
		{"serve", "--db", db, "--cpuprofile", "/no/such/dir/cpu.prof"},
		{"serve", "--db", db, "--cors-origins", "*"},
		{"serve", "--db", db, "--cors-origins", "https://app.example/path"},
		{"serve", "--db", db, "--cors-credentials"},
		{"serve", "--db", db, "--jwt-audience", "ledger"},
		{"serve", "--db", db, "--memory-rows", "-1"},
		{"serve", "--db", db, "--memory-rows", "many"},
		{"rebuild", "--db", db, "--cpuprofile", "/no/such/dir/cpu.prof"},
		{"bench", "store", "--db", db},
		{"bench", "store", "--db", "postgres://127.0.0.1/test", "--pg-events", "0"},
		{"bench", "store", "--pairs", "0"},
		{"bench", "store", "--round", "0"},
		{"bench", "store", "--group-round", "0"},
		{"bench", "store", "--prefill", "-1"},
		{"bench", "store", "--one-per-tx-events", "0"},
		{"bench", "store", "--appenders", "1,x"},
		{"history", "--db", db, "--since", "2026-01-02T00:00:00Z", "--until", "2026-01-01T00:00:00Z"},
		{"asof", "--db", db, "--position", "-1", "--out", filepath.Join(t.TempDir(), "a.db")},
		{"history", "--db", ""},
		{"serve", "--db", db, "--write-rate", "-1"},
	} {
		_, _, err := runCLI(t, args...)
		if err == nil || exitCode(err) != 2 {
			t.Errorf("ledger %q: err %v (exit %d), want a usage error (exit 2)", args, err, exitCode(err))
		}
	}
}

// TestStrayWordExit2: a word that is not a flag, before or after the
// flags, is a usage error naming it; the flag package would stop at it
// and leave every later flag at its default (serve on ./data/ledger.db).
func TestStrayWordExit2(t *testing.T) {
	db := filepath.Join(t.TempDir(), "s.db")
	for _, args := range [][]string{
		{"serve", "extra", "--db", db, "--listen", "127.0.0.1:0"},
		{"stats", "extra", "--db", db},
		{"verify", "--db", db, "extra"},
		{"rebuild", "junk", "--db", db},
		{"history", "--db", db, "extra-arg"},
		{"bench", "rebuild", "extra"},
	} {
		_, _, err := runCLI(t, args...)
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "extra") && !strings.Contains(fmt.Sprint(err), "junk") {
			t.Errorf("ledger %q: err %v (exit %d), want exit 2 naming the stray word", args, err, exitCode(err))
		}
	}
}

// A flag value the flag package refuses is reported once, by main, with
// exit 2 and the value; --help prints the flags to stdout and succeeds.
func TestFlagErrorsOnce(t *testing.T) {
	stdout, stderr, err := runCLI(t, "history", "--limit", "abc")
	if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), `"abc"`) || !strings.Contains(fmt.Sprint(err), "ledger history --help") {
		t.Errorf("--limit abc: err %v (exit %d), want exit 2 naming the value and --help", err, exitCode(err))
	}
	if stdout != "" || stderr != "" {
		t.Errorf("--limit abc printed beside the error: stdout %q, stderr %q", stdout, stderr)
	}
	stdout, stderr, err = runCLI(t, "history", "--help")
	if err != nil || !strings.Contains(stdout, "Usage: ledger history") || stderr != "" {
		t.Errorf("--help: err %v, stdout %q, stderr %q; want the flags on stdout", err, stdout, stderr)
	}
}

func TestEnvFillsFlags(t *testing.T) {
	db := filepath.Join(t.TempDir(), "env.db")
	mustFill(t, db, 3)
	var out strings.Builder
	getenv := func(k string) string {
		return map[string]string{"LEDGER_DB": db, "LEDGER_FORMAT": "csv"}[k]
	}
	if err := run(context.Background(), []string{"history"}, getenv, &out, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "position,id,type") {
		t.Errorf("LEDGER_FORMAT=csv not honoured: %q", out.String())
	}
	bad := func(k string) string { return map[string]string{"LEDGER_LIMIT": "lots"}[k] }
	err := run(context.Background(), []string{"history", "--db", db}, bad, &out, &out)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "LEDGER_LIMIT") {
		t.Errorf("bad env value: %v, want exit 2 naming LEDGER_LIMIT", err)
	}
}

// TestHistoryKindNotConfigured: `history --kind likes` (a typo, or a kind
// not configured) exported nothing and exited 0, as if no one had liked
// anything, where the HTTP history answers 404. history takes --kinds like
// the other commands, and a --kind outside them is a usage error naming
// both; a kind the log holds from an earlier configuration is exported
// once --kinds names it.
func TestHistoryKindNotConfigured(t *testing.T) {
	db := filepath.Join(t.TempDir(), "k.db")
	mustFill(t, db, 2)
	_, _, err := runCLI(t, "history", "--db", db, "--kind", "likes")
	if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), `"likes"`) || !strings.Contains(fmt.Sprint(err), "like,collect") {
		t.Fatalf("history --kind likes: %v (exit %d), want exit 2 naming the kind and the configured ones", err, exitCode(err))
	}
	out, _, err := runCLI(t, "history", "--db", db, "--kinds", "like,collect,follow", "--kind", "follow")
	if err != nil || out != "" {
		t.Fatalf("history --kind follow with --kinds naming it: %q %v, want no event and no error", out, err)
	}
	if _, _, err := runCLI(t, "history", "--db", db, "--kinds", "Like"); exitCode(err) != 2 {
		t.Fatalf("history --kinds Like: %v, want exit 2", err)
	}
}

// TestHistoryAfterBeyondTheHead: `history --after N` beyond the log's
// head (a position of before a restore of an older copy, or a typo)
// exported nothing and exited 0, where the HTTP history answers 412; it
// is a usage error naming the position and the head.
func TestHistoryAfterBeyondTheHead(t *testing.T) {
	db := filepath.Join(t.TempDir(), "a.db")
	mustFill(t, db, 2) // 4 events
	_, _, err := runCLI(t, "history", "--db", db, "--after", "5")
	if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "--after 5") || !strings.Contains(fmt.Sprint(err), "head 4") {
		t.Fatalf("history --after 5 on a 4-event log: %v (exit %d), want exit 2 naming 5 and the head 4", err, exitCode(err))
	}
	if out, _, err := runCLI(t, "history", "--db", db, "--after", "4"); err != nil || out != "" {
		t.Fatalf("history --after the head: %q %v, want no event and no error", out, err)
	}
}

func TestHistory(t *testing.T) {
	db := filepath.Join(t.TempDir(), "h.db")
	mustFill(t, db, 10)
	t.Run("NDJSON", func(t *testing.T) {
		out, _, err := runCLI(t, "history", "--db", db)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 20 {
			t.Fatalf("%d lines, want 20 events", len(lines))
		}
		var first struct{ Position int64 }
		json.Unmarshal([]byte(lines[0]), &first)
		if first.Position != 1 {
			t.Errorf("first line %s", lines[0])
		}
	})
	t.Run("JSON", func(t *testing.T) {
		out, _, err := runCLI(t, "history", "--db", db, "--format", "json", "--user", "u3")
		if err != nil {
			t.Fatal(err)
		}
		var evs []struct{ User, Type string }
		if err := json.Unmarshal([]byte(out), &evs); err != nil {
			t.Fatalf("not a JSON array: %v\n%s", err, out)
		}
		if len(evs) != 2 || evs[0].User != "u3" || evs[1].Type != "interaction.cancelled" {
			t.Errorf("u3's events %+v", evs)
		}
		empty, _, err := runCLI(t, "history", "--db", db, "--format", "json", "--user", "nobody")
		if err != nil || strings.TrimSpace(empty) != "[]" {
			t.Errorf("empty export %q %v", empty, err)
		}
	})
	t.Run("CSVToFile", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "h.csv")
		_, _, err := runCLI(t, "history", "--db", db, "--format", "csv", "--target", "article/a1", "--kind", "like", "--out", file)
		if err != nil {
			t.Fatal(err)
		}
		f, _ := os.Open(file)
		defer f.Close()
		recs, err := csv.NewReader(f).ReadAll()
		if err != nil || len(recs) != 1+20 {
			t.Fatalf("%d records %v, want header + 20 like events of article/a1", len(recs), err)
		}
	})
	t.Run("AfterAndTime", func(t *testing.T) {
		out, _, err := runCLI(t, "history", "--db", db, "--after", "15", "--limit", "3")
		if err != nil || strings.Count(out, "\n") != 3 || !strings.Contains(out, `"position":16`) {
			t.Errorf("after 15 limit 3: %q %v", out, err)
		}
		future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		out, _, err = runCLI(t, "history", "--db", db, "--since", future)
		if err != nil || out != "" {
			t.Errorf("since the future: %q %v", out, err)
		}
		out, _, err = runCLI(t, "history", "--db", db, "--until", future)
		if err != nil || strings.Count(out, "\n") != 20 {
			t.Errorf("until the future: %d lines %v", strings.Count(out, "\n"), err)
		}
	})
}

// mustLedgerAt opens the log at db with the default kinds; the store is
// closed when the test ends (or earlier by the returned func).
func mustLedgerAt(t *testing.T, db string) (*domain.Ledger, func()) {
	t.Helper()
	store := mustOpenStore(t, db, storeOptions{})
	return domain.NewLedger(store, domain.MustKindSet("like", "collect"), domain.LedgerConfig{}, nil), func() { store.Close() }
}

// mustLiveLike has user like target live in the log at db.
func mustLiveLike(t *testing.T, db, user, target string) {
	t.Helper()
	l, done := mustLedgerAt(t, db)
	defer done()
	u, _ := domain.NewUserID(user)
	tg, _ := domain.ParseTarget(target)
	k, _ := domain.ParseKind("like")
	if _, err := l.Set(context.Background(), domain.SetRequest{User: u, Target: tg, Kind: k, On: true}); err != nil {
		t.Fatal(err)
	}
}

// mustFill has users u0..u(n-1) each like then unlike article/a1.
func mustFill(t *testing.T, db string, n int) {
	t.Helper()
	l, done := mustLedgerAt(t, db)
	defer done()
	tg, _ := domain.ParseTarget("article/a1")
	k, _ := domain.ParseKind("like")
	for i := range n {
		u, _ := domain.NewUserID("u" + itoa(i))
		for _, on := range []bool{true, false} {
			if _, err := l.Set(context.Background(), domain.SetRequest{User: u, Target: tg, Kind: k, On: on}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestImportLegacy(t *testing.T) {
	db := filepath.Join(t.TempDir(), "imp.db")
	t.Run("ErrInconsistentRowsFail", func(t *testing.T) {
		_, errOut, err := runCLI(t, "import", "legacy", legacySample, "--db", db)
		if err == nil || exitCode(err) != 1 {
			t.Fatalf("want exit 1 with --on-error fail, got %v", err)
		}
		mustContain(t, errOut, ":137: updated_at", ":274: action_type", ":697: user_id", ":735: target_id", ":1125: created_at")
		if head := logHead(t, db); head != 0 {
			t.Fatalf("a failed import appended %d events", head)
		}
	})
	t.Run("OK", func(t *testing.T) {
		out, _, err := runCLI(t, "import", "legacy", "--on-error", "skip", legacySample, "--db", db)
		if err != nil {
			t.Fatal(err)
		}
		mustContain(t, out, "1420 rows", "2206 events appended", "0 already present")
		want := legacyActiveCounts(t)
		got := logActiveCounts(t, db)
		if len(got) != len(want) {
			t.Errorf("%d (target, kind) pairs active in the log, %d in the CSV", len(got), len(want))
		}
		for k, n := range want {
			if got[k] != n {
				t.Errorf("%s: %d active in the log, %d not deleted in the CSV", k, got[k], n)
			}
		}
	})
	t.Run("ReimportAppendsNothing", func(t *testing.T) {
		before := logHead(t, db)
		out, _, err := runCLI(t, "import", "legacy", legacySample, "--on-error", "skip", "--db", db)
		if err != nil {
			t.Fatal(err)
		}
		mustContain(t, out, "0 events appended", "2206 already present")
		if after := logHead(t, db); after != before {
			t.Fatalf("re-import moved the head from %d to %d", before, after)
		}
	})
}

// legacyActiveCounts counts not-deleted rows per "type/id kind" straight
// from the CSV, leaving out the five inconsistent lines.
func legacyActiveCounts(t *testing.T) map[string]int {
	f, err := os.Open(legacySample)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReader(f))
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	bad := map[int]bool{137: true, 274: true, 697: true, 735: true, 1125: true}
	out := map[string]int{}
	for i, rec := range recs[1:] {
		if !bad[i+2] && rec[5] == "0" {
			out[rec[3]+"/"+rec[4]+" "+rec[2]]++
		}
	}
	return out
}

func logActiveCounts(t *testing.T, db string) map[string]int {
	ctx := context.Background()
	state := map[string]bool{}
	err := readLog(ctx, db, func(e domain.Event) error {
		state[e.Target.String()+" "+e.Kind.String()+" "+e.User.String()] = e.On()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for k, on := range state {
		if on {
			parts := strings.SplitN(k, " ", 3)
			out[parts[0]+" "+parts[1]]++
		}
	}
	return out
}

func logHead(t *testing.T, db string) int64 {
	ctx := context.Background()
	store, err := sqlite.OpenReadOnly(ctx, db, nil)
	if errors.Is(err, domain.ErrNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	n, err := store.LastPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// bench rebuild generates a log in one child and rebuilds it in another,
// so that the rebuild's peak memory is its own.
func TestBenchRebuildSmall(t *testing.T) {
	out, errOut, err := runCLI(t, "bench", "rebuild", "--events", "3000", "--dir", t.TempDir(), "--json")
	if err != nil {
		t.Fatalf("%v: %s", err, errOut)
	}
	var res RebuildResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	if res.Events != 3000 || res.RebuildSecs <= 0 || res.GenerateSecs <= 0 || res.PerSecond <= 0 || res.PeakRSSKiB <= 0 {
		t.Errorf("result %+v", res)
	}
}

// TestOutNamesTheGivenPath: an --out that cannot be written names the path
// given, not the temporary file the export is written to beside it.
func TestOutNamesTheGivenPath(t *testing.T) {
	db := filepath.Join(t.TempDir(), "l.db")
	mustFill(t, db, 3)
	out := filepath.Join(t.TempDir(), "missing", "x.csv")
	_, _, err := runCLI(t, "history", "--db", db, "--out", out)
	if err == nil || !strings.Contains(err.Error(), out+": no such file") || strings.Contains(err.Error(), ".tmp") {
		t.Errorf("history --out %s: %v, want it named", out, err)
	}
}

// TestBenchStoreIgnoresLedgerDB: LEDGER_DB, exported for serve (a SQLite
// file, or a production postgres:// URL), is not bench store's --db: it
// made every bench store a usage error, or loaded that database.
func TestBenchStoreIgnoresLedgerDB(t *testing.T) {
	getenv := func(k string) string {
		return map[string]string{"LEDGER_DB": filepath.Join(t.TempDir(), "ledger.db")}[k]
	}
	var out, errOut strings.Builder
	args := []string{"bench", "store", "--appenders", "1", "--pairs", "1", "--prefill", "10", "--events", "10",
		"--one-per-tx-events", "10", "--round", "5", "--group-round", "5", "--dir", t.TempDir()}
	if err := run(context.Background(), args, getenv, &out, &errOut); err != nil {
		t.Fatalf("bench store with LEDGER_DB set: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "ledger append, 1 appenders") {
		t.Errorf("bench store with LEDGER_DB set printed %q, want the SQLite rows", out.String())
	}
}

// bench store pairs every ledger row with a baseline run on a log of the
// same size, and prints the lone appender's ratio to one row per
// transaction as a median with its spread.
func TestBenchStorePaired(t *testing.T) {
	out, errOut, err := runCLI(t, "bench", "store", "--appenders", "1,8", "--pairs", "3", "--prefill", "50",
		"--events", "40", "--one-per-tx-events", "10", "--round", "3", "--group-round", "15", "--dir", t.TempDir(), "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	var rows []StoreResult
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	want := []struct {
		name, baseline string
		appends        int
	}{
		{"raw one row per transaction", "", 10}, {"ledger append, 1 appenders", "raw one row per transaction", 10},
		{"raw 1000 rows per transaction, turns with 8 appenders", "", 40},
		{"ledger append, 8 appenders", "raw 1000 rows per transaction, turns with 8 appenders", 40},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(rows), len(want), rows)
	}
	for i, w := range want {
		r := rows[i]
		if r.Name != w.name || r.Baseline != w.baseline || r.Appends != w.appends || r.Prefill != 50 || r.Pairs != 3 {
			t.Errorf("row %d: %+v, want %+v with prefill 50 and 3 pairs", i, r, w)
		}
		if r.Rate.Min <= 0 || r.Rate.Min > r.PerSecond || r.PerSecond > r.Rate.Max {
			t.Errorf("row %q: rate %v not ordered min <= median <= max", r.Name, r.Rate)
		}
		if (r.VsBaseline != nil) != (w.baseline != "") {
			t.Errorf("row %q: ratio %v, baseline %q", r.Name, r.VsBaseline, w.baseline)
		} else if v := r.VsBaseline; v != nil && (v.Min <= 0 || v.Min > v.Median || v.Median > v.Max) {
			t.Errorf("row %q: ratio %+v not ordered", r.Name, *v)
		}
	}
}

// The bench's server CPU figure parses /proc/<pid>/stat: it must grow as
// the process computes.
func TestServerProcCPUTime(t *testing.T) {
	self, err := os.FindProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	p := &serverProc{cmd: &exec.Cmd{Process: self}}
	before := p.cpuTime()
	sum := 0
	for deadline := time.Now().Add(10 * time.Second); p.cpuTime() <= before; {
		if time.Now().After(deadline) {
			t.Fatalf("cpu time stayed at %v through 10 s of work (sum %d)", before, sum)
		}
		for range 100000 {
			sum += len(strconv.Itoa(sum))
		}
	}
	if (*serverProc)(nil).cpuTime() != 0 {
		t.Error("no process: want 0")
	}
}

// TestOutNotAStoreFile: an output path that names a file of the store
// (the log, its -wal or -shm, the views file) is a usage error, and the
// log is intact after: history --out c.db used to truncate the log and
// exit 0.
func TestOutNotAStoreFile(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "c.db")
	mustFill(t, db, 3)
	before, _, err := runCLI(t, "history", "--db", db)
	if err != nil || before == "" {
		t.Fatalf("history: %v %q", err, before)
	}
	link := filepath.Join(dir, "link.db")
	if err := os.Link(db, link); err != nil {
		t.Fatal(err)
	}
	symlink := filepath.Join(dir, "sym.db") // SQLite's WAL is c.db-wal, not sym.db-wal
	if err := os.Symlink(db, symlink); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"history", "--db", symlink, "--out", db + "-wal"},
		{"history", "--db", symlink, "--out", db + ".views"},
		{"history", "--db", db, "--out", db, "--format", "csv"},
		{"history", "--db", db, "--out", db + "-wal"},
		{"history", "--db", db, "--out", filepath.Join(dir, ".", "c.db.views")},
		{"history", "--db", db, "--out", link},
		{"rebuild", "--db", db, "--cpuprofile", db},
		{"serve", "--db", db, "--cpuprofile", db + "-shm", "--listen", "127.0.0.1:0"},
	} {
		_, _, err := runCLI(t, args...)
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "destroy the store") {
			t.Errorf("ledger %q: err %v (exit %d), want exit 2 refusing a file of the store", args, err, exitCode(err))
		}
	}
	after, _, err := runCLI(t, "history", "--db", db)
	if err != nil || after != before {
		t.Fatalf("the log after: %v, %q, want %q", err, after, before)
	}
}

// TestOutNotTheViewsUsed: the views file a command uses (a custom --views,
// or ./data/ledger.views when --db is a URL) is a file of the store too,
// refused before anything is opened: serve --cpuprofile used to overwrite
// a custom views file at shutdown.
func TestOutNotTheViewsUsed(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // the cluster default views file is relative
	db := filepath.Join(dir, "c.db")
	mustFill(t, db, 3)
	views := filepath.Join(dir, "node.views")
	if _, _, err := runCLI(t, "rebuild", "--db", db, "--views", views); err != nil {
		t.Fatal(err)
	}
	const pg = "postgres://127.0.0.1:1/ledger?connect_timeout=1"
	for _, args := range [][]string{
		{"serve", "--db", db, "--views", views, "--cpuprofile", views, "--listen", "127.0.0.1:0"},
		{"serve", "--db", db, "--views", views, "--cpuprofile", views + "-wal", "--listen", "127.0.0.1:0"},
		{"serve", "--db", pg, "--cpuprofile", "data/ledger.views", "--listen", "127.0.0.1:0"},
		{"serve", "--db", pg, "--views", views, "--cpuprofile", views + "-shm", "--listen", "127.0.0.1:0"},
		{"rebuild", "--db", db, "--views", views, "--cpuprofile", views},
		{"rebuild", "--db", pg, "--cpuprofile", "./data/ledger.views-wal"},
		{"history", "--db", pg, "--out", "data/ledger.views"},
		{"asof", "--db", db, "--position", "1", "--out", db + "-shm"},
		{"asof", "--db", pg, "--position", "1", "--out", "data/ledger.views-wal"},
	} {
		err := runCanceled(t, args...) // unchecked, serve writes its profile at once
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "destroy the store") {
			t.Errorf("ledger %q: err %v (exit %d), want exit 2 refusing a file of the store", args, err, exitCode(err))
		}
	}
	if _, err := os.Stat("data"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("./data: %v, want nothing created", err)
	}
	if _, _, err := runCLI(t, "verify", "--db", db, "--views", views); err != nil {
		t.Errorf("verify after: %v", err)
	}
}

// TestViewsNotTheLog: a --views that names the SQLite log itself (or its
// -wal, -shm, a link to it) is a usage error before anything is opened:
// serve and rebuild wrote the read models into the log's own file, under
// its write lock, which the README's Architecture rules out ("a separate
// SQLite file").
func TestViewsNotTheLog(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "c.db")
	mustFill(t, db, 3)
	before, _, err := runCLI(t, "history", "--db", db)
	if err != nil || before == "" {
		t.Fatalf("history: %v %q", err, before)
	}
	link := filepath.Join(dir, "link.db")
	if err := os.Link(db, link); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"serve", "--db", db, "--views", db, "--listen", "127.0.0.1:0"},
		{"serve", "--db", db, "--views", filepath.Join(dir, ".", "c.db-wal"), "--listen", "127.0.0.1:0"},
		{"rebuild", "--db", db, "--views", db},
		{"rebuild", "--db", db, "--views", link},
		{"verify", "--db", db, "--views", db},
		{"stats", "--db", db, "--views", db + "-shm"},
	} {
		err := runCanceled(t, args...)
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "--views") {
			t.Errorf("ledger %q: err %v (exit %d), want exit 2 refusing the log as the views file", args, err, exitCode(err))
		}
	}
	after, _, err := runCLI(t, "history", "--db", db)
	if err != nil || after != before {
		t.Fatalf("the log after: %v, %q, want %q", err, after, before)
	}
	logDB, err := sql.Open("sqlite3", db)
	if err != nil {
		t.Fatal(err)
	}
	defer logDB.Close()
	var tables int
	if err := logDB.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name IN ('counts', 'checkpoints')`).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("read-model tables in the log: %d (%v), want none", tables, err)
	}
}

// TestImportADirectory: a directory given as the file is a usage error
// (exit 2) that says so, not a failed read of its header (exit 1); no
// event log is created.
func TestImportADirectory(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "imp.db")
	_, _, err := runCLI(t, "import", "legacy", dir, "--db", db)
	if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "is a directory, not a CSV file") {
		t.Fatalf("import legacy DIR: %v (exit %d), want exit 2 saying it is a directory", err, exitCode(err))
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("import legacy DIR left %s: %v", db, err)
	}
}

// TestImportConflictsWithLiveHistory: a legacy row of a user and target
// that already hold a live event is reported and not imported (a 2025
// cancel appended after a live like would undo it); exit 1, the like
// stays. On both stores: the cancel is queued to follow its add, whose
// conflict the store's writer must see (it finds the pair at the version
// the cancel expects).
func TestImportConflictsWithLiveHistory(t *testing.T) {
	for name, db := range map[string]func(t *testing.T, dir string) string{
		"SQLite":     func(_ *testing.T, dir string) string { return filepath.Join(dir, "live.db") },
		"PostgreSQL": func(t *testing.T, _ string) string { return pgtest.WithSchema(pgtest.URL(t), pgtest.Schema(t)) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			importOverALiveLike(t, dir, db(t, dir))
		})
	}
}

// importOverALiveLike imports a file whose u9 liked and unliked q9 into the
// log db, where u9 likes q9 live: u9's rows conflict, u1's is imported.
func importOverALiveLike(t *testing.T, dir, db string) {
	mustLiveLike(t, db, "u9", "article/q9")
	csvPath := filepath.Join(dir, "old.csv")
	rows := "id,user_id,action_type,target_type,target_id,is_deleted,created_at,updated_at\n" +
		"77,u9,like,article,q9,1,2025-01-01 00:00:00,2025-01-02 00:00:00\n" +
		"78,u1,like,article,q9,0,2025-01-01 00:00:00,2025-01-01 00:00:00\n"
	if err := os.WriteFile(csvPath, []byte(rows), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runCLI(t, "import", "legacy", csvPath, "--db", db)
	if exitCode(err) != 1 || !strings.Contains(errOut, "old.csv:2: user_id") || !strings.Contains(out, "1 events appended") ||
		!strings.Contains(out, "2 conflicting") {
		t.Fatalf("import over a live like: %v (exit %d)\nstdout %s\nstderr %s", err, exitCode(err), out, errOut)
	}
	hist, _, err := runCLI(t, "history", "--db", db, "--user", "u9")
	if err != nil || strings.Count(hist, "\n") != 1 || !strings.Contains(hist, "interaction.added") {
		t.Fatalf("u9's history after: %v %q, want the live like alone", err, hist)
	}
}

// TestServeRefusesAMissingDataDirectory: a --db whose directory is missing
// too is a mistake more often than a first run (a data disk not mounted, a
// moved directory, a relative path from another working directory); serve
// and import made a new, empty log there and served an empty site. They
// exit 2 naming it and create nothing; with the directory there, a new
// log is made.
func TestServeRefusesAMissingDataDirectory(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "mnt", "data", "ledger.db")
	for _, args := range [][]string{
		{"serve", "--db", db, "--listen", "127.0.0.1:0"},
		{"import", "legacy", "--db", db, filepath.Join(dir, "none.csv")},
	} {
		err := runCanceled(t, args...)
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "directory") {
			t.Errorf("ledger %q: %v (exit %d), want exit 2 naming the missing directory", args, err, exitCode(err))
		}
	}
	if _, _, err := runCLI(t, "rebuild", "--db", db); err == nil {
		t.Error("rebuild of a missing log passed")
	}
	if _, err := os.Stat(filepath.Join(dir, "mnt")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("something was created under the missing directory: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(db), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "history", "--db", db); err == nil {
		t.Fatal("history of a log that does not exist passed")
	}
	if _, _, err := runCLI(t, "bench", "generate", "--db", db, "--events", "10"); err != nil {
		t.Fatalf("a new log with the directory there: %v", err)
	}
	if _, err := os.Stat(db); err != nil {
		t.Errorf("no new log in the existing directory: %v", err)
	}
}

// TestBenchGenerateSaysItIsDone: bench generate's only line was its first
// progress report, under the name of bench rebuild ("bench rebuild:
// generated 65536/250000 events", then exit 0), which reads as a
// generation stopped a quarter of the way.
func TestBenchGenerateSaysItIsDone(t *testing.T) {
	db := filepath.Join(t.TempDir(), "l.db")
	_, errOut, err := runCLI(t, "bench", "generate", "--db", db, "--events", "70000")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "bench generate: wrote 70000 events in ") {
		t.Errorf("its last line is %q, want one saying it wrote the 70000 events", last)
	}
	if strings.Contains(errOut, "bench rebuild") {
		t.Errorf("bench generate speaks as bench rebuild:\n%s", errOut)
	}
}

// TestNewLogInAFileWithNoTable: a copy of a running server's ledger.db
// made without its -wal can be its first page alone, a database with no
// table; the commands that write the log made it a new, empty log without
// the warning a missing file gets, so a restore of such a copy served an
// empty site without a word. A zero-byte file is the same to SQLite.
func TestNewLogInAFileWithNoTable(t *testing.T) {
	dir := t.TempDir()
	copied := filepath.Join(dir, "copied.db")
	conn, err := sql.Open("sqlite3", copied)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec("PRAGMA journal_mode=WAL"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, db := range []string{copied, empty} {
		_, errOut, err := runCLI(t, "bench", "generate", "--db", db, "--events", "10")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(errOut, "created a new, empty event log (the file at the path held no table") {
			t.Errorf("%s: no warning that a new log was made in it:\n%s", filepath.Base(db), errOut)
		}
	}
	// Once it holds the log, it is no new one.
	_, errOut, err := runCLI(t, "bench", "generate", "--db", copied, "--events", "10")
	if exitCode(err) != 2 || strings.Contains(errOut, "created a new") {
		t.Errorf("a log with events: %v (exit %d), want exit 2 and no warning:\n%s", err, exitCode(err), errOut)
	}
}

// TestStoreFileRefusalHidesThePassword: an output file refused as a file
// of a PostgreSQL store (the default views file ./data/ledger.views) was
// refused naming the store by its whole URL, password included, on stderr.
func TestStoreFileRefusalHidesThePassword(t *testing.T) {
	db := "postgres://ledger:SECRETPW@127.0.0.1:1/x?sslpassword=SECRET2"
	for _, args := range [][]string{
		{"history", "--db", db, "--out", DefaultClusterViews},
		{"asof", "--db", db, "--position", "1", "--out", DefaultClusterViews},
		{"rebuild", "--db", db, "--cpuprofile", DefaultClusterViews},
	} {
		_, _, err := runCLI(t, args...)
		if exitCode(err) != 2 || strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), "xxxxx") {
			t.Errorf("%s: %v (exit %d), want exit 2 with the password masked", args[0], err, exitCode(err))
		}
	}
}

// TestBenchGenerateRefusesALogWithEvents: bench generate writes a
// synthetic log into a new or empty one; given a log that holds events
// (its default --db is the real ./data/ledger.db) it appended thousands of
// made-up likes to them, or stopped half-way on a version conflict.
func TestBenchGenerateRefusesALogWithEvents(t *testing.T) {
	db := filepath.Join(t.TempDir(), "l.db")
	if _, _, err := runCLI(t, "import", "legacy", "--db", db, "--on-error", "skip", legacySample); err != nil {
		t.Fatal(err)
	}
	before, _, err := runCLI(t, "history", "--db", db)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = runCLI(t, "bench", "generate", "--db", db, "--events", "10")
	if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), db) {
		t.Errorf("generate into a log with events: %v (exit %d), want exit 2 naming it", err, exitCode(err))
	}
	after, _, err := runCLI(t, "history", "--db", db)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("the log changed: %d events before, %d after", strings.Count(before, "\n"), strings.Count(after, "\n"))
	}
}

// TestOutNotADatabase: history takes no --views, so the views file of a
// node run with --views (a cluster's node.views) or another log was not a
// file of the store to it: --out overwrote it with the export, exit 0.
// An existing SQLite database or WAL is refused whatever store it is of.
func TestOutNotADatabase(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "c.db")
	mustFill(t, db, 3)
	other := filepath.Join(dir, "other.db")
	mustFill(t, other, 2)
	before, _, err := runCLI(t, "history", "--db", other)
	if err != nil {
		t.Fatal(err)
	}
	views := filepath.Join(dir, "node.views")
	if _, _, err := runCLI(t, "rebuild", "--db", db, "--views", views); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"history", "--db", db, "--out", views},
		{"history", "--db", db, "--out", other, "--format", "csv"},
		{"history", "--db", other, "--out", db + "-wal"},
		{"rebuild", "--db", other, "--cpuprofile", views},
	} {
		_, _, err := runCLI(t, args...)
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "SQLite database") {
			t.Errorf("ledger %q: err %v (exit %d), want exit 2 refusing a database", args, err, exitCode(err))
		}
	}
	if _, _, err := runCLI(t, "verify", "--db", db, "--views", views); err != nil {
		t.Errorf("verify after: %v", err)
	}
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	read := make(chan []byte)
	go func() { b, _ := os.ReadFile(fifo); read <- b }()
	if _, _, err := runCLI(t, "history", "--db", db, "--out", fifo); err != nil { // not read for a header
		t.Errorf("history into a pipe: %v", err)
	}
	if b := <-read; strings.Count(string(b), "\n") != 6 {
		t.Errorf("the pipe read %q, want the 6 events", b)
	}
	if after, _, err := runCLI(t, "history", "--db", other); err != nil || after != before {
		t.Errorf("the other log after: %v, %q, want %q", err, after, before)
	}
}

// TestOutWaitsForThePipesReader: --out on a FIFO was opened read-write,
// which waits for no reader: a short export was written into the pipe and
// closed before its reader came, lost with exit 0 (and the reader then
// waited for ever). Opened write-only, it waits for a reader, or for the
// command's end (here a context already ended).
func TestOutWaitsForThePipesReader(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // lets a write-only open still waiting go
		if r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			r.Close()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, finish, err := outputInPlace(ctx, fifo)
	if err == nil {
		finish(nil)
		t.Fatal("--out on a pipe nobody reads was opened at once: an export written into it is lost")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("open of a pipe nobody reads, the command ended: %v, want context.Canceled", err)
	}
}

// filesThatAreNoLog makes, in dir, a log db, its views file and an as-of
// file of it: SQLite files that hold tables but no event log.
func filesThatAreNoLog(t *testing.T) (dir, db, views, asof string) {
	t.Helper()
	dir = t.TempDir()
	db = filepath.Join(dir, "c.db")
	mustFill(t, db, 3)
	views = filepath.Join(dir, "node.views")
	if _, _, err := runCLI(t, "rebuild", "--db", db, "--views", views); err != nil {
		t.Fatal(err)
	}
	asof = filepath.Join(dir, "nov1.db")
	if _, _, err := runCLI(t, "asof", "--db", db, "--position", "2", "--out", asof); err != nil {
		t.Fatal(err)
	}
	return dir, db, views, asof
}

// TestWritesRefuseAFileThatIsNoLog: import given a views file or an as-of
// file as --db (serve too: both open the log for writing) migrated it into
// a log: the log's tables were created beside the read models and the
// legacy rows appended there.
func TestWritesRefuseAFileThatIsNoLog(t *testing.T) {
	_, db, views, asof := filesThatAreNoLog(t)
	for _, file := range []string{views, asof} {
		_, _, err := runCLI(t, "import", "legacy", "--db", file, "--on-error", "skip", legacySample)
		if err == nil || !strings.Contains(err.Error(), "no event log") {
			t.Errorf("import into %s: %v, want it refused as no event log", file, err)
		}
		conn, err := sql.Open("sqlite3", file)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := conn.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name IN ('events', 'schema_migrations')`).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s holds %d log tables (%v), want none", file, n, err)
		}
		conn.Close()
	}
	if _, _, err := runCLI(t, "verify", "--db", db, "--views", views); err != nil {
		t.Errorf("verify after: %v", err)
	}
}

// TestHistoryOutKeptOnFailure: an export that fails part-way (here an
// event the log cannot decode) left --out cut where it failed, flushed up
// to the last whole row, in place of the file's earlier content: a CSV
// that read as complete. --out is now replaced only by a whole export.
func TestHistoryOutKeptOnFailure(t *testing.T) {
	dir := t.TempDir()
	db := mustBadEventLog(t, dir)
	out := filepath.Join(dir, "out", "likes.csv")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, []byte("yesterday's export\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "history", "--db", db, "--format", "csv", "--out", out); exitCode(err) != 1 {
		t.Fatalf("export over a bad event: %v, want exit 1", err)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "yesterday's export\n" {
		t.Errorf("--out after the failure: %d bytes %v, want yesterday's export", len(b), err)
	}
	if names, _ := os.ReadDir(filepath.Dir(out)); len(names) != 1 {
		t.Errorf("files beside --out: %v, want only it", names)
	}
	if _, _, err := runCLI(t, "history", "--db", db, "--format", "csv", "--until", "2025-01-01T00:00:00Z", "--out", out); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); !strings.HasPrefix(string(b), "position,") {
		t.Errorf("--out after a whole export: %q", b)
	}
}

// TestOutNotAStoreFileThroughALinkedDirectory: a path to the views file
// not there yet (before a server built it) through a symlink to the
// store's directory passed the check: the path itself is no link, and the
// file it names does not exist; the export was then the node's views file.
func TestOutNotAStoreFileThroughALinkedDirectory(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "c.db")
	mustFill(t, db, 3)
	alias := filepath.Join(t.TempDir(), "alias")
	if err := os.Symlink(dir, alias); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"c.db.views"} {
		_, _, err := runCLI(t, "history", "--db", db, "--out", filepath.Join(alias, name))
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "destroy the store") {
			t.Errorf("--out %s through a linked directory: %v (exit %d), want exit 2 refusing a file of the store", name, err, exitCode(err))
		}
		if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s after: %v, want no file", name, err)
		}
	}
}

// TestOutNotAStoreFileThroughDotDotAfterALinkedDirectory: linkpath.End
// cleaned the path before resolving its directory's links, so ".." after a
// linked directory went up from the link, where the kernel goes up from
// the directory it points to: <link to the store's subdirectory>/../
// <the views file not there yet> passed, and the export became the
// node's views file.
func TestOutNotAStoreFileThroughDotDotAfterALinkedDirectory(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "c.db")
	mustFill(t, db, 3)
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	alias := filepath.Join(t.TempDir(), "alias")
	if err := os.Symlink(filepath.Join(dir, "sub"), alias); err != nil {
		t.Fatal(err)
	}
	out := alias + string(filepath.Separator) + ".." + string(filepath.Separator) + "c.db.views"
	_, _, err := runCLI(t, "history", "--db", db, "--out", out)
	if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "destroy the store") {
		t.Errorf("--out %s: %v (exit %d), want exit 2 refusing a file of the store", out, err, exitCode(err))
	}
	if _, err := os.Lstat(filepath.Join(dir, "c.db.views")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("c.db.views after: %v, want no file", err)
	}
}

// privateExport is a log of 3 pairs' events and, beside it, yesterday's
// export at mode 0600: the --out a new export replaces.
func privateExport(t *testing.T) (db, out string) {
	t.Helper()
	dir := t.TempDir()
	db, out = filepath.Join(dir, "c.db"), filepath.Join(dir, "likes.csv")
	mustFill(t, db, 3)
	if err := os.WriteFile(out, []byte("yesterday's export\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return db, out
}

// TestHistoryOutKeepsItsMode: --out replaced by a new file renamed over it
// took the new file's mode (0666 less the umask), so a private export
// (0600) became readable by every user of the machine once written again.
func TestHistoryOutKeepsItsMode(t *testing.T) {
	db, out := privateExport(t)
	if _, _, err := runCLI(t, "history", "--db", db, "--format", "csv", "--out", out); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(out); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("--out after the export: %v %v, want mode 0600 kept", info.Mode(), err)
	}
}

// TestHistoryOutPrivateWhileWritten: the file renamed over a private
// --out (0600) was created 0666 less the umask and narrowed only then, so
// another user could open it in between and read the export as it was
// written. It is created with the replaced file's permissions.
func TestHistoryOutPrivateWhileWritten(t *testing.T) {
	db, out := privateExport(t)
	var made []os.FileMode
	t.Cleanup(func() { openFile = os.OpenFile })
	openFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		if err == nil && strings.HasPrefix(name, out+".") {
			if info, err := f.Stat(); err == nil {
				made = append(made, info.Mode().Perm())
			}
		}
		return f, err
	}
	if _, _, err := runCLI(t, "history", "--db", db, "--format", "csv", "--out", out); err != nil {
		t.Fatal(err)
	}
	if len(made) != 1 || made[0] != 0o600 {
		t.Errorf("the replacement as made: %v, want one file, mode 0600", made)
	}
}

// TestHistoryOutBesideAStaleTemporaryFile: the export was written to
// <out>.<pid>.tmp, created only if absent, so the file a killed run
// (SIGKILL, the OOM killer) left behind failed every later run with the
// same process id (in a container every run is process 1) until removed.
func TestHistoryOutBesideAStaleTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "c.db")
	mustFill(t, db, 3)
	out := filepath.Join(dir, "likes.csv")
	stale := fmt.Sprintf("%s.%d.tmp", out, os.Getpid())
	if err := os.WriteFile(stale, []byte("a killed run's half export"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "history", "--db", db, "--format", "csv", "--out", out); err != nil {
		t.Fatalf("export beside a stale temporary file: %v", err)
	}
	if b, _ := os.ReadFile(out); !strings.HasPrefix(string(b), "position,") {
		t.Errorf("--out after the export: %q", b)
	}
}

// mustBadEventLog makes the log l.db in dir of the legacy sample's 2206
// events, the 2000th of which does not decode: a read of the log fails
// part-way.
func mustBadEventLog(t *testing.T, dir string) string {
	t.Helper()
	db := filepath.Join(dir, "l.db")
	if _, _, err := runCLI(t, "import", "legacy", "--db", db, "--on-error", "skip", legacySample); err != nil {
		t.Fatal(err)
	}
	logDB, err := sql.Open("sqlite3", db)
	if err != nil {
		t.Fatal(err)
	}
	defer logDB.Close()
	if _, err := logDB.Exec(`UPDATE events SET kind = 'Bad Kind' WHERE position = 2000`); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestAsOfLeavesNoFileOnFailure: an as-of build that failed part-way (an
// event the log cannot decode, Ctrl-C) left its --out file with empty
// tables, which read as a log with nothing on, and which a second run
// refused as existing.
func TestAsOfLeavesNoFileOnFailure(t *testing.T) {
	dir := t.TempDir()
	db := mustBadEventLog(t, dir)
	out := filepath.Join(dir, "nov1.db")
	if _, _, err := runCLI(t, "asof", "--db", db, "--position", "2100", "--out", out); err == nil {
		t.Fatal("asof over a bad event passed")
	}
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		if _, err := os.Stat(out + suffix); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s after the failure: %v, want no file", out+suffix, err)
		}
	}
	if _, _, err := runCLI(t, "asof", "--db", db, "--position", "1000", "--out", out); err != nil {
		t.Errorf("a second asof: %v", err)
	}
}

// TestABadEventIsTheLogsFault: an event the log cannot decode made asof
// exit 2 with "usage:", as for a bad flag; it is a failure, exit 1.
func TestABadEventIsTheLogsFault(t *testing.T) {
	dir := t.TempDir()
	db := mustBadEventLog(t, dir)
	for _, args := range [][]string{
		{"asof", "--db", db, "--position", "2100", "--out", filepath.Join(dir, "a.db")},
		{"history", "--db", db},
		{"rebuild", "--db", db},
	} {
		if _, _, err := runCLI(t, args...); exitCode(err) != 1 || errors.Is(err, errUsage) {
			t.Errorf("ledger %q: %v (exit %d), want exit 1", args, err, exitCode(err))
		}
	}
}

// TestOutNotAStoreFileThroughADanglingLink: a symlink to a file of the
// store that does not exist yet (the views file before a server built it,
// the log's -journal or -wal while no one has it open) passed the check, which
// resolves links only to files that exist, and history wrote the export
// there through it.
func TestOutNotAStoreFileThroughADanglingLink(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "c.db")
	mustFill(t, db, 3)
	for _, target := range []string{"c.db.views", db + "-journal"} {
		link := filepath.Join(dir, "out.csv")
		os.Remove(link)
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		_, _, err := runCLI(t, "history", "--db", db, "--out", link)
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "destroy the store") {
			t.Errorf("--out a link to %s: %v (exit %d), want exit 2 refusing a file of the store", target, err, exitCode(err))
		}
		if _, err := os.Lstat(filepath.Join(dir, filepath.Base(target))); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s after: %v, want no file", target, err)
		}
	}
}

// TestOutNoFilePathExit2: an --out that can name no file (a directory, a
// path in a directory that does not exist, or under a regular file) is a
// usage error naming it, exit 2, for history as for asof; history exited
// 1 ("open DIR: is a directory"), and both exited 1 for a missing
// directory, while --cpuprofile exits 2 for the same paths.
func TestOutNoFilePathExit2(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "o.db")
	mustFill(t, db, 3)
	file := filepath.Join(dir, "plain.txt")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	outs := map[string]string{
		filepath.Join(dir, "sub"):                            "is a directory",
		filepath.Join(dir, "missing", "x.out"):               "no such file or directory",
		filepath.Join(file, "x.out"):                         "not a directory",
		filepath.Join(dir, "sub") + string(os.PathSeparator): "is a directory",
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for out, says := range outs {
		for _, args := range [][]string{
			{"history", "--db", db, "--out", out},
			{"asof", "--db", db, "--position", "2", "--out", out},
		} {
			_, _, err := runCLI(t, args...)
			if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), out) || !strings.Contains(fmt.Sprint(err), says) {
				t.Errorf("ledger %q: %v (exit %d), want exit 2 naming %s and saying %q", args, err, exitCode(err), out, says)
			}
		}
	}
}

// TestReadsNameAFileThatIsNoLog: the commands that only read the log,
// given as --db a views file, an as-of file or an empty file (a copy of a
// running server's log made without its -wal can hold no table), said
// "read schema version: no such table: schema_migrations". They now say
// what the file is, as the commands that write the log do.
func TestReadsNameAFileThatIsNoLog(t *testing.T) {
	dir, _, views, asof := filesThatAreNoLog(t)
	empty := filepath.Join(dir, "copy.db")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{views: "but no event log", asof: "but no event log", empty: "holds no table"}
	for file, says := range files {
		for _, args := range [][]string{
			{"history", "--db", file},
			{"stats", "--db", file, "--views", filepath.Join(dir, "none.views")},
			{"asof", "--db", file, "--position", "1", "--out", filepath.Join(dir, "x.db")},
		} {
			_, _, err := runCLI(t, args...)
			if err == nil || !strings.Contains(err.Error(), says) || !strings.Contains(err.Error(), file) {
				t.Errorf("ledger %q: %v, want it named and saying %q", args, err, says)
			}
		}
	}
}

// TestViewsNotAnotherLog: a --views naming another SQLite event log (a
// node's log, a backup of one) is refused, exit 2, as the log itself is:
// stats, verify and rebuild wrote the read models' tables into it (seen:
// `ledger stats --views other.db` left counts, viewer, checkpoints and
// meta in other.db), whether --db is a SQLite file or a PostgreSQL URL.
func TestViewsNotAnotherLog(t *testing.T) {
	dir := t.TempDir()
	db, other := filepath.Join(dir, "c.db"), filepath.Join(dir, "other.db")
	mustFill(t, db, 3)
	mustFill(t, other, 2)
	for _, args := range [][]string{
		{"stats", "--db", db, "--views", other},
		{"verify", "--db", db, "--views", other},
		{"rebuild", "--db", db, "--views", other},
		{"stats", "--db", "postgres://127.0.0.1:1/none?search_path=none", "--views", other},
	} {
		_, _, err := runCLI(t, args...)
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), other) || !strings.Contains(fmt.Sprint(err), "holds an event log") {
			t.Errorf("ledger %q: err %v (exit %d), want exit 2 naming %s as an event log", args, err, exitCode(err), other)
		}
	}
	if err := runCanceled(t, "serve", "--db", db, "--views", other, "--listen", "127.0.0.1:0"); exitCode(err) != 2 {
		t.Errorf("serve --views %s: err %v (exit %d), want exit 2", other, err, exitCode(err))
	}
	logDB, err := sql.Open("sqlite3", other)
	if err != nil {
		t.Fatal(err)
	}
	defer logDB.Close()
	var tables int
	if err := logDB.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name IN ('counts', 'checkpoints', 'meta')`).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("read-model tables in the other log: %d (%v), want none", tables, err)
	}
}
