package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBenchWorkloadBadValuesExit2: bench http and baseline took a --zipf
// of NaN or Inf (its check was "<= 1", false for NaN), then spun a core
// drawing targets and ignored SIGTERM; a --write-ratio of NaN made no
// writes; a --url that is no base URL exited 1 once the load started;
// and a --cpuprofile that can name no file seeded the hot target, then
// waited 30 s for a server that had exited 2 on it. Each is now a usage
// error naming the value, before anything starts.
func TestBenchWorkloadBadValuesExit2(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"bench", "http", "--zipf", "NaN"}, "zipf NaN"},
		{[]string{"bench", "http", "--zipf", "+Inf"}, "zipf +Inf"},
		{[]string{"bench", "baseline", "--zipf", "NaN"}, "zipf NaN"},
		{[]string{"bench", "http", "--write-ratio", "NaN"}, "write ratio NaN"},
		{[]string{"bench", "http", "--url", "foo"}, `--url "foo"`},
		{[]string{"bench", "http", "--url", "https://127.0.0.1:1"}, `--url "https://127.0.0.1:1"`},
		{[]string{"bench", "http", "--cpuprofile", dir}, dir},
		{[]string{"bench", "baseline", "--cpuprofile", filepath.Join(dir, "no", "cpu.prof")}, filepath.Join(dir, "no", "cpu.prof")},
	} {
		err := runCanceled(t, c.args...)
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), c.says) {
			t.Errorf("ledger %q: %v (exit %d), want exit 2 saying %q", c.args, err, exitCode(err), c.says)
		}
	}
}

// TestBenchServerDirRemovedOnFailure: a bench http whose seeding of the
// hot target failed (here: interrupted at once) left its ledger-bench-*
// directory in the temporary directory.
func TestBenchServerDirRemovedOnFailure(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	if err := runCanceled(t, "bench", "http", "--hot-likes", "10"); err == nil {
		t.Fatal("bench http with its context canceled: no error")
	}
	left, err := os.ReadDir(tmp)
	if err != nil || len(left) != 0 {
		t.Fatalf("temporary directory after: %v (%v), want it empty", left, err)
	}
}

// TestViewsInAMissingDirectoryExit2: a --views whose directory does not
// exist (a typo, a data disk not mounted) had its directories created, and
// serve and rebuild built a new views file there from the log; verify and
// stats exited 1. A --views that is a directory exited 1 ("unable to open
// database file"). Both are usage errors naming the path, as a --db in a
// missing directory is, and nothing is created.
func TestViewsInAMissingDirectoryExit2(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "v.db")
	mustFill(t, db, 2)
	missing := filepath.Join(dir, "mnt", "views", "node.views")
	for _, views := range []string{missing, dir} {
		for _, args := range [][]string{
			{"serve", "--db", db, "--views", views, "--listen", "127.0.0.1:0"},
			{"rebuild", "--db", db, "--views", views},
			{"verify", "--db", db, "--views", views},
			{"stats", "--db", db, "--views", views},
		} {
			err := runCanceled(t, args...)
			if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "--views "+views) {
				t.Errorf("ledger %q: %v (exit %d), want exit 2 naming --views %s", args, err, exitCode(err), views)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "mnt")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("something was created under the missing directory: %v", err)
	}
	t.Chdir(dir)
	if _, _, err := runCLI(t, "rebuild", "--db", db, "--views", "./data/node-a.views"); err != nil {
		t.Errorf("rebuild --views ./data/node-a.views, ./data missing: %v, want it made (the default data directory)", err)
	}
}

// TestDBMisspeltURLPasswordNotEchoed: a --db URL with a password that
// was taken for a SQLite path (PostgreSQL's scheme in capitals or with one
// slash, another scheme's URL that does not parse) was echoed whole in
// "open …: not found", and one of another scheme echoed its ?password=.
// Each is a usage error that names the URL without its password.
func TestDBMisspeltURLPasswordNotEchoed(t *testing.T) {
	for db, says := range map[string]string{
		"Postgres://u:s3cret@127.0.0.1/ledger":   `"Postgres://"`,
		"postgresql:/u:s3cret@127.0.0.1/ledger":  `"postgresql:/"`,
		"postgress://u@h/ledger?password=s3cret": `scheme "postgress"`,
		"pg://h/ledger?sslpassword=s3cret&x=1":   `scheme "pg"`,
		"mysql://u:s3cret@h/%zz":                 `scheme "mysql"`,
	} {
		for _, args := range [][]string{{"history", "--db", db}, {"serve", "--db", db, "--listen", "127.0.0.1:0"}} {
			var err error
			if args[0] == "serve" {
				err = runStopped(t, args...)
			} else {
				_, _, err = runCLI(t, args...)
			}
			if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), says) || strings.Contains(fmt.Sprint(err), "s3cret") {
				t.Errorf("ledger %q: %v (exit %d), want exit 2 saying %q, without the password", args, err, exitCode(err), says)
			}
		}
	}
}

// TestDBThatIsNoLogFileExit2: a --db that can be no SQLite log (a
// directory, a file that is not a SQLite database, a views or as-of file,
// a URL of another scheme) exited 1 ("disk I/O error: is a directory",
// "database file is corrupt: file is not a database", "not found" for
// mysql://…, where serve asked to create the directory "mysql:"); each is
// a usage error naming it, the URL without its password, and no file is
// changed.
func TestDBThatIsNoLogFileExit2(t *testing.T) {
	dir, _, views, _ := filesThatAreNoLog(t)
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("id,user_id\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(views)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "x.db")
	for db, says := range map[string]string{
		dir:                         "is a directory",
		text:                        "not a SQLite database",
		views:                       "no event log",
		filepath.Join(text, "x.db"): "not a directory",
		"mysql://u:secret@h/ledger": `"mysql://u:xxxxx@h/ledger"`,
	} {
		for _, args := range [][]string{
			{"serve", "--db", db, "--listen", "127.0.0.1:0"},
			{"import", "legacy", "--db", db, "--on-error", "skip", legacySample},
			{"history", "--db", db},
			{"stats", "--db", db},
			{"verify", "--db", db},
			{"rebuild", "--db", db},
			{"asof", "--db", db, "--position", "1", "--out", out},
			{"relay", "nats", "--db", db, "--nats", "nats://127.0.0.1:1"},
			{"bench", "generate", "--db", db, "--events", "1"},
		} {
			var err error
			if args[0] == "serve" || args[0] == "relay" {
				err = runStopped(t, args...) // a wrong start serves or retries for ever
			} else {
				_, _, err = runCLI(t, args...)
			}
			if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), says) || strings.Contains(fmt.Sprint(err), "secret") {
				t.Errorf("ledger %q: %v (exit %d), want exit 2 saying %q", args, err, exitCode(err), says)
			}
		}
	}
	if after, err := os.ReadFile(views); err != nil || !bytes.Equal(after, before) {
		t.Errorf("the views file given as --db changed (%v)", err)
	}
}

// runStopped runs the CLI with a context that ends after 10 s: a command
// refused at once ends long before, and one that wrongly starts to serve
// stops then instead of serving for ever. runCanceled does not do for
// refusals found once the log is open: opening it fails first.
func runStopped(t *testing.T, args ...string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return run(ctx, args, func(string) string { return "" }, io.Discard, io.Discard)
}

// TestHelpOfASubcommand: "ledger help serve" printed the list of
// subcommands and "ledger help nope" did too, exit 0; they are now
// "ledger serve --help" and an unknown subcommand (exit 2).
func TestHelpOfASubcommand(t *testing.T) {
	for _, args := range [][]string{{"help", "stats"}, {"help", "bench", "http"}, {"help", "relay", "nats"}, {"help", "import", "legacy"}} {
		out, _, err := runCLI(t, args...)
		want := "Usage: ledger " + strings.Join(args[1:], " ")
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("ledger %q: %v, out %q, want %q", args, err, out, want)
		}
	}
	if _, _, err := runCLI(t, "help", "nope"); exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), `"nope"`) {
		t.Errorf("ledger help nope: %v (exit %d), want exit 2 naming it", err, exitCode(err))
	}
}

// TestViewsThatIsNoDatabaseKept: a --views naming a file that is no SQLite
// database (a CSV given by a slip) was called damaged: rebuild renamed it
// to <file>.damaged and wrote a views file at its path. It is now a usage
// error naming it, and the file is left as it was.
func TestViewsThatIsNoDatabaseKept(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "k.db")
	mustFill(t, db, 2)
	csv := filepath.Join(dir, "rows.csv")
	body := []byte("id,user_id\n1,u1\n")
	if err := os.WriteFile(csv, body, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"rebuild", "--db", db, "--views", csv},
		{"verify", "--db", db, "--views", csv},
		{"stats", "--db", db, "--views", csv},
		{"serve", "--db", db, "--views", csv, "--listen", "127.0.0.1:0"},
	} {
		if err := runStopped(t, args...); exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "--views "+csv) {
			t.Errorf("ledger %q: %v (exit %d), want exit 2 naming --views %s", args, err, exitCode(err), csv)
		}
	}
	if got, err := os.ReadFile(csv); err != nil || !bytes.Equal(got, body) {
		t.Errorf("%s after: %q (%v), want it unchanged", csv, got, err)
	}
	if _, err := os.Stat(csv + ".damaged"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s.damaged: %v, want none", csv, err)
	}
}

// TestPostgresURLSaysWhatIsWrong: a PostgreSQL URL pgx cannot parse was
// refused with "not a valid connection string", whatever the parameter;
// the refusal now says what pgx found wrong, never a password.
func TestPostgresURLSaysWhatIsWrong(t *testing.T) {
	for url, says := range map[string]string{
		"postgres://u:SECRET@127.0.0.1:1/x?pool_max_conns=0":               "pool_max_conns too small",
		"postgres://u:SECRET@127.0.0.1:1/x?sslmode=bogus":                  "sslmode is invalid",
		"postgres://u:SECRET@127.0.0.1:1/x?connect_timeout=soon":           "invalid connect_timeout",
		"postgres://u@127.0.0.1:1/x?password=SECRET&connect_timeout=soon":  "invalid connect_timeout",
		"postgres://u:my SECRET@127.0.0.1:1/x":                             "not a valid connection string",
		"postgres://u:SECRET@127.0.0.1:1/x?application_name=a@b&sslmode=x": "sslmode is invalid",
	} {
		_, _, err := runCLI(t, "stats", "--db", url, "--views", filepath.Join(t.TempDir(), "v.views"))
		msg := fmt.Sprint(err)
		if exitCode(err) != 2 || !strings.Contains(msg, says) || strings.Contains(msg, "SECRET") {
			t.Errorf("stats --db %s: %v (exit %d), want exit 2 saying %q, no password", url, err, exitCode(err), says)
		}
	}
}

// TestBenchDirNoDirectoryExit2: a --dir of bench store, rebuild or relay
// that is missing or a file failed with "stat DIR: no such file or
// directory" or "mkdir DIR/ledger-bench-…: not a directory", exit 1,
// naming no flag; it is a usage error naming --dir.
func TestBenchDirNoDirectoryExit2(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(dir, "missing"), file} {
		for _, args := range [][]string{
			{"bench", "store", "--dir", d},
			{"bench", "rebuild", "--events", "1", "--dir", d},
			{"bench", "relay", "--events", "1", "--runs", "1", "--nats", "nats://127.0.0.1:1", "--dir", d},
		} {
			_, _, err := runCLI(t, args...)
			if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "--dir "+d) {
				t.Errorf("ledger %q: %v (exit %d), want exit 2 naming --dir %s", args, err, exitCode(err), d)
			}
		}
	}
}

// TestOutDashIsStdout: history --out - wrote a file named "-" in the
// working directory and nothing to stdout, and asof --out - a SQLite file
// of that name. history now writes to stdout; asof, which writes a
// database, refuses it (exit 2).
func TestOutDashIsStdout(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	mustFill(t, db, 2)
	t.Chdir(dir)
	out, _, err := runCLI(t, "history", "--db", db, "--out", "-")
	if err != nil || strings.Count(out, "\n") != 4 {
		t.Errorf("history --out -: %v, stdout %q, want the 4 events", err, out)
	}
	_, _, err = runCLI(t, "asof", "--db", db, "--position", "1", "--out", "-")
	if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "--out -") {
		t.Errorf("asof --out -: %v (exit %d), want exit 2 naming --out -", err, exitCode(err))
	}
	if _, err := os.Stat(filepath.Join(dir, "-")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a file named -: %v, want none", err)
	}
}

// TestServeHeartbeatTooShortExit2: serve took --heartbeat 1ns (any
// duration > 0) and sent each event stream's client heartbeats as fast as
// it could write them; under 10ms is now a usage error naming the flag.
func TestServeHeartbeatTooShortExit2(t *testing.T) {
	db := filepath.Join(t.TempDir(), "h.db")
	for _, d := range []string{"1ns", "9ms"} {
		err := runCanceled(t, "serve", "--db", db, "--listen", "127.0.0.1:0", "--heartbeat", d)
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "--heartbeat "+d) {
			t.Errorf("serve --heartbeat %s: %v (exit %d), want exit 2 naming it", d, err, exitCode(err))
		}
	}
}

// TestImportHeaderSaysWhatItRead: a CSV saved as UTF-16, or whose lines
// end in "\r\r\n", was refused with only `header: missing column "id"`
// (or "updated_at"), which reads as a wrong export; the refusal now names
// the encoding, or quotes the header it read.
func TestImportHeaderSaysWhatItRead(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "i.db")
	header := "id,user_id,action_type,target_type,target_id,is_deleted,created_at,updated_at"
	utf16 := []byte{0xff, 0xfe}
	for _, r := range header + "\n" {
		utf16 = append(utf16, byte(r), 0)
	}
	for body, says := range map[string]string{
		string(utf16):           "UTF-16",
		header + "\r\r\n":       `"updated_at\r"`,
		"user,id,kind\n1,2,3\n": `got ["user" "id" "kind"]`,
	} {
		file := filepath.Join(dir, "rows.csv")
		if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := runCLI(t, "import", "legacy", "--db", db, file)
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), says) {
			t.Errorf("import of %q: %v (exit %d), want exit 2 saying %q", body, err, exitCode(err), says)
		}
	}
}

// TestPostgresURLWithoutDatabaseExit2: a PostgreSQL URL that names no
// database (`postgres://`, `postgres://HOST`) got libpq's default, the
// user's name: serve migrated the log into the database "root" (or
// "postgres") the operator never named. It is a usage error, exit 2.
func TestPostgresURLWithoutDatabaseExit2(t *testing.T) {
	t.Setenv("PGDATABASE", "")
	for _, url := range []string{"postgres://", "postgres://u:SECRET@127.0.0.1:1", "postgresql://127.0.0.1:1/?sslmode=disable"} {
		_, _, err := runCLI(t, "stats", "--db", url, "--views", filepath.Join(t.TempDir(), "v.views"))
		if msg := fmt.Sprint(err); exitCode(err) != 2 || !strings.Contains(msg, "names no database") || strings.Contains(msg, "SECRET") {
			t.Errorf("stats --db %s: %v (exit %d), want exit 2 saying it names no database", url, err, exitCode(err))
		}
	}
	if _, _, err := runCLI(t, "stats", "--db", "postgres://127.0.0.1:1?dbname=x&connect_timeout=1", "--views", filepath.Join(t.TempDir(), "v.views")); exitCode(err) != 1 {
		t.Errorf("a dbname parameter: %v (exit %d), want the unreachable server's failure, exit 1", err, exitCode(err))
	}
}

// TestBoolFlagValueAfterASpace: "--json false" (or "--cors-credentials
// false") set the flag to true, and the word "false" was refused as a
// stray argument, not saying that a boolean takes its value after "=".
func TestBoolFlagValueAfterASpace(t *testing.T) {
	db := filepath.Join(t.TempDir(), "b.db")
	for _, args := range [][]string{
		{"stats", "--db", db, "--json", "false"},
		{"serve", "--db", db, "--public-history", "false"},
	} {
		err := runCanceled(t, args...)
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), args[len(args)-2]+"=false") {
			t.Errorf("ledger %q: %v (exit %d), want exit 2 pointing to %s=false", args, err, exitCode(err), args[len(args)-2])
		}
	}
}

// TestImportChecksTheDBFirst: import read and checked the whole file (a
// million rows take seconds), reporting its inconsistent rows, before it
// found that --db names no store; it now refuses the --db first.
func TestImportChecksTheDBFirst(t *testing.T) {
	dir := t.TempDir()
	_, errOut, err := runCLI(t, "import", "legacy", "--db", dir, legacySample)
	if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "is a directory") || strings.Contains(errOut, ":137:") {
		t.Errorf("import --db DIR: %v (exit %d), stderr %q, want exit 2 refusing the --db before the rows", err, exitCode(err), errOut)
	}
}

// TestBenchURLNobodyAnswers: bench http --url of an address where no
// ledger answers drove it for the whole --duration, then failed with
// "hot reads failed: map[transport error:86694]"; it now fails at once
// naming the URL and why.
func TestBenchURLNobodyAnswers(t *testing.T) {
	err := runStopped(t, "bench", "http", "--url", "http://127.0.0.1:1", "--duration", "1h")
	if msg := fmt.Sprint(err); exitCode(err) != 1 || !strings.Contains(msg, "--url http://127.0.0.1:1") || !strings.Contains(msg, "refused") {
		t.Errorf("bench http --url http://127.0.0.1:1: %v (exit %d), want a failure naming the URL, connection refused", err, exitCode(err))
	}
}
