package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/interactionledger/ledger/adapters/nats/natstest"
)

// runEnv runs the CLI in-process with vars as its environment.
func runEnv(t *testing.T, vars map[string]string, args ...string) (string, error) {
	t.Helper()
	var out strings.Builder
	ctx := t.Context()
	if args[0] == "serve" {
		c, cancel := context.WithCancel(ctx)
		cancel() // a serve that wrongly starts stops at once
		ctx = c
	}
	err := run(ctx, args, func(k string) string { return vars[k] }, &out, io.Discard)
	return out.String(), err
}

// TestEnvFlagWins: a flag on the command line wins over its variable, and
// the variable fills the flag when the command line leaves it out.
func TestEnvFlagWins(t *testing.T) {
	db := filepath.Join(t.TempDir(), "w.db")
	mustFill(t, db, 2)
	vars := map[string]string{"LEDGER_DB": db, "LEDGER_FORMAT": "csv"}
	out, err := runEnv(t, vars, "history", "--format", "json")
	if err != nil || !strings.HasPrefix(out, "[") {
		t.Errorf("LEDGER_FORMAT=csv with --format json: %v, %.40q; want JSON", err, out)
	}
	out, err = runEnv(t, vars, "history")
	if err != nil || !strings.HasPrefix(out, "position,") {
		t.Errorf("LEDGER_FORMAT=csv alone: %v, %.40q; want CSV", err, out)
	}
}

// TestEnvBadValueNamesTheVariable: a value a LEDGER_* variable gave that
// the command refuses is a usage error naming the variable, not only the
// flag (or the setting) an operator never typed; a secret's value is never
// printed; the same value given as a flag does not name the variable.
func TestEnvBadValueNamesTheVariable(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "e.db")
	mustFill(t, db, 1)
	secret := "short-s3cret"
	cases := []struct {
		name, value string
		args        []string
	}{
		{"LEDGER_CONSISTENCY_TIMEOUT", "60s", []string{"serve"}},
		{"LEDGER_DRAIN_TIMEOUT", "0s", []string{"serve"}},
		{"LEDGER_HEARTBEAT", "0s", []string{"serve"}},
		{"LEDGER_READ_HEADER_TIMEOUT", "-1s", []string{"serve"}},
		{"LEDGER_LISTEN", "0.0.0.0:0", []string{"serve"}},
		{"LEDGER_WRITE_RATE", "NaN", []string{"serve"}},
		{"LEDGER_MEMORY_ROWS", "-1", []string{"serve"}},
		{"LEDGER_LOG_LEVEL", "verbose", []string{"serve"}},
		{"LEDGER_KINDS", "like,,x", []string{"serve"}},
		{"LEDGER_JWT_SECRET", secret, []string{"serve"}},
		{"LEDGER_JWT_AUDIENCE", "ledger", []string{"serve"}},
		{"LEDGER_CORS_CREDENTIALS", "true", []string{"serve"}},
		{"LEDGER_OUT", dir, []string{"history"}},
		{"LEDGER_LIMIT", "-1", []string{"history"}},
		{"LEDGER_STREAM_REPLICAS", "9", []string{"relay", "nats"}},
		{"LEDGER_LOCK_TTL", "1ms", []string{"relay", "nats"}},
	}
	for _, c := range cases {
		vars := map[string]string{"LEDGER_DB": db, c.name: c.value}
		_, err := runEnv(t, vars, c.args...)
		msg := fmt.Sprint(err)
		if exitCode(err) != 2 || !strings.Contains(msg, c.name) {
			t.Errorf("%s=%s: %v (exit %d), want exit 2 naming %s", c.name, c.value, err, exitCode(err), c.name)
		}
		if strings.Contains(msg, "LEDGER_DB") {
			t.Errorf("%s=%s: %v names LEDGER_DB, which was not the problem", c.name, c.value, err)
		}
		if strings.Contains(msg, secret) {
			t.Errorf("%s: the message prints the secret: %v", c.name, err)
		}
	}
	flag := "--" + strings.ToLower(strings.ReplaceAll(strings.TrimPrefix("LEDGER_CONSISTENCY_TIMEOUT", "LEDGER_"), "_", "-"))
	_, err := runEnv(t, map[string]string{"LEDGER_DB": db}, "serve", flag, "60s")
	if exitCode(err) != 2 || strings.Contains(fmt.Sprint(err), "LEDGER_") {
		t.Errorf("serve %s 60s: %v, want exit 2 naming no variable", flag, err)
	}
}

// TestBenchChildrenIgnoreLedgerVariables: the processes a bench starts
// (bench rebuild's generate and rebuild, bench http's server) take every
// setting from their command line. They inherited the LEDGER_* variables
// exported for the node: with LEDGER_VIEWS set, `ledger bench rebuild`
// rebuilt the node's own views file from the bench's synthetic log.
func TestBenchChildrenIgnoreLedgerVariables(t *testing.T) {
	db := filepath.Join(t.TempDir(), "node.db")
	mustFill(t, db, 3)
	if _, errOut, err := runCLI(t, "rebuild", "--db", db); err != nil {
		t.Fatalf("rebuild: %v: %s", err, errOut)
	}
	t.Setenv("LEDGER_VIEWS", db+".views")
	if _, errOut, err := runCLI(t, "bench", "rebuild", "--events", "500", "--dir", t.TempDir(), "--json"); err != nil {
		t.Fatalf("bench rebuild: %v: %s", err, errOut)
	}
	if out, _, err := runCLI(t, "verify", "--db", db); err != nil {
		t.Errorf("the node's views after bench rebuild with LEDGER_VIEWS set: %v\n%s", err, out)
	}
}

// TestBenchGenerateDBFromCommandLineOnly: bench generate writes synthetic
// events that can never be taken out of a log; a LEDGER_DB exported for a
// new cluster's (still empty) log filled it with them when --db was left
// out. Its --db is required and never read from LEDGER_DB, as bench
// store's.
func TestBenchGenerateDBFromCommandLineOnly(t *testing.T) {
	db := filepath.Join(t.TempDir(), "node.db")
	_, err := runEnv(t, map[string]string{"LEDGER_DB": db}, "bench", "generate", "--events", "10")
	if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "--db") {
		t.Errorf("bench generate with LEDGER_DB and no --db: %v (exit %d), want exit 2 asking for --db", err, exitCode(err))
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LEDGER_DB's log: %v, want not created", err)
	}
}

// TestBenchRelayNATSFromCommandLineOnly: bench relay's --nats was read
// from the LEDGER_NATS exported for the relay, so the bench loaded the
// production NATS with its runs' streams. It is the command line's (or
// the local default) only: here LEDGER_NATS names nothing that listens,
// and the bench runs against the local server all the same.
func TestBenchRelayNATSFromCommandLineOnly(t *testing.T) {
	if url := natstest.MustURL(t); url != defaultNATS {
		t.Fatalf("the test NATS %s is not bench relay's default %s", url, defaultNATS)
	}
	if _, err := runEnv(t, map[string]string{"LEDGER_NATS": "nats://127.0.0.1:1"}, "bench", "relay", "--events", "10", "--runs", "1", "--json"); err != nil {
		t.Fatalf("bench relay with LEDGER_NATS set for the relay: %v, want the local default used", err)
	}
}

// TestUnknownVariablesWarned: a LEDGER_* variable that is no flag of any
// subcommand (a typo: LEDGER_CONSISTENCYTIMEOUT) was ignored without a
// word, so the setting silently kept its default. It is warned about,
// naming it; a variable of another subcommand's flag (LEDGER_LISTEN while
// running stats, from one environment for every command) is not.
func TestUnknownVariablesWarned(t *testing.T) {
	var w strings.Builder
	warnUnknownVariables(&w, []string{
		"PATH=/bin", "LEDGER_CONSISTENCYTIMEOUT=5s", "LEDGER_LISTEN=0.0.0.0:80", "LEDGER_RATE=5",
		"LEDGER_NATS=nats://x", "LEDGER_APPENDERS=1", "LEDGER_CHILD=1", "LEDGER_TEST_POSTGRES_URL=postgres://x",
		"LEDGER_JWT_SECRT=s3cret-value",
	})
	got := w.String()
	for _, name := range []string{"LEDGER_CONSISTENCYTIMEOUT", "LEDGER_JWT_SECRT"} {
		if !strings.Contains(got, name) {
			t.Errorf("no warning naming %s: %q", name, got)
		}
	}
	for _, quiet := range []string{"LEDGER_LISTEN", "LEDGER_RATE", "LEDGER_NATS", "LEDGER_APPENDERS", "LEDGER_CHILD", "LEDGER_TEST_POSTGRES_URL", "PATH", "s3cret"} {
		if strings.Contains(got, quiet) {
			t.Errorf("warning names %s: %q", quiet, got)
		}
	}
}

// TestConfigTablesMatchFlags keeps README's flag tables (serve's under
// Configuration, relay nats's under Relay to NATS) equal to the flag sets:
// every flag in its table, no row for a flag that is not there, and each
// default shown as the code's (a default written `<...>` is described,
// not shown; an empty or false default is shown as nothing or off).
func TestConfigTablesMatchFlags(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	tables := []struct {
		heading string
		args    []string
	}{
		{"| flag | default | meaning |", []string{"serve"}},
		{"| flag (`LEDGER_<FLAG>` too) | default | meaning |", []string{"relay", "nats"}},
	}
	for _, tb := range tables {
		documented := readmeFlags(t, string(readme), tb.heading)
		fs := flagSetOf(t, tb.args...)
		fs.VisitAll(func(f *flag.Flag) {
			shown, ok := documented[f.Name]
			if !ok {
				t.Errorf("ledger %s --%s is not in README's table", strings.Join(tb.args, " "), f.Name)
				return
			}
			delete(documented, f.Name)
			if !defaultShown(shown, f.DefValue) {
				t.Errorf("ledger %s --%s: README shows the default %q, the code's is %q", strings.Join(tb.args, " "), f.Name, shown, f.DefValue)
			}
		})
		for name := range documented {
			t.Errorf("README's table for ledger %s names --%s, which it does not take", strings.Join(tb.args, " "), name)
		}
	}
}

// flagSetOf returns the flag set of the subcommand args names, asking it
// for its --help.
func flagSetOf(t *testing.T, args ...string) *flag.FlagSet {
	t.Helper()
	var sets []*flag.FlagSet
	e := env{getenv: func(string) string { return "" }, stdout: io.Discard, stderr: io.Discard, flagSets: &sets}
	c, _ := lookup(args[0])
	if err := c.run(t.Context(), e, append(args[1:], "--help")); err != nil || len(sets) != 1 {
		t.Fatalf("ledger %v --help: %v, %d flag sets", args, err, len(sets))
	}
	return sets[0]
}

// readmeFlags reads the table whose header is the line heading: flag name
// (without --) → its default cell. A row may name several flags and
// their defaults, comma-separated.
func readmeFlags(t *testing.T, readme, heading string) map[string]string {
	t.Helper()
	_, after, ok := strings.Cut(readme, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README has no table headed %q", heading)
	}
	out := map[string]string{}
	for line := range strings.Lines(after) {
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(strings.ReplaceAll(line, `\|`, "¦"), "|")
		if len(cells) < 4 || !strings.Contains(cells[1], "`--") {
			continue // the rule
		}
		names := strings.Split(cells[1], ",")
		defaults := strings.Split(cells[2], ",")
		if len(names) == 1 {
			defaults = []string{cells[2]}
		}
		for i, n := range names {
			n = strings.Trim(strings.TrimSpace(n), "`-")
			if i < len(defaults) {
				out[n] = strings.TrimSpace(defaults[i])
			} else {
				out[n] = "(missing)"
			}
		}
	}
	return out
}

// defaultShown reports whether a README default cell shows def.
func defaultShown(cell, def string) bool {
	if strings.HasPrefix(cell, "`<") {
		return true
	}
	if def == "" || def == "false" {
		return cell == "" || cell == "off" || cell == "(off)"
	}
	_, rest, ok := strings.Cut(cell, "`")
	shown, _, ok2 := strings.Cut(rest, "`")
	return ok && ok2 && shown == def
}

// TestBadValueSaysWhatIsWanted: a value that does not parse said only
// "parse error" (LEDGER_HEARTBEAT="15": parse error), leaving the operator
// to guess that a duration needs its unit or that yes is no boolean. The
// message names the variable or flag, the value and what is wanted.
func TestBadValueSaysWhatIsWanted(t *testing.T) {
	cases := []struct{ name, value, want string }{
		{"heartbeat", "15", "unit"},
		{"public-history", "yes", "true or false"},
		{"memory-rows", "1e6", "whole number"},
		{"write-rate", "1/s", "number"},
	}
	for _, c := range cases {
		variable := envName(c.name)
		_, err := runEnv(t, map[string]string{variable: c.value}, "serve")
		if msg := fmt.Sprint(err); exitCode(err) != 2 || !strings.Contains(msg, variable) || !strings.Contains(msg, c.value) || !strings.Contains(msg, c.want) {
			t.Errorf("%s=%s: %v, want exit 2 naming it and %q", variable, c.value, err, c.want)
		}
		_, err = runEnv(t, nil, "serve", "--"+c.name+"="+c.value)
		if msg := fmt.Sprint(err); exitCode(err) != 2 || !strings.Contains(msg, c.name) || !strings.Contains(msg, c.value) || !strings.Contains(msg, c.want) {
			t.Errorf("--%s=%s: %v, want exit 2 naming it and %q", c.name, c.value, err, c.want)
		}
	}
}

// TestDBKeywordDSNRefused: a libpq keyword/value connection string
// (host=... password=...), which libpq and pgx take, was taken for a
// SQLite file's name: serve created a new, empty log named after it (the
// password in the file's name and in the log lines naming it) and served
// an empty site, and stats printed it whole. It is a usage error asking
// for a postgres:// URL, printing neither the string nor its password.
func TestDBKeywordDSNRefused(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	dsn := "host=127.0.0.1 user=postgres password=s3cretpw dbname=test"
	for _, args := range [][]string{{"serve", "--listen", "127.0.0.1:0"}, {"stats"}, {"history"}, {"rebuild"}, {"relay", "nats"}} {
		_, err := runEnv(t, map[string]string{"LEDGER_DB": dsn}, args...)
		msg := fmt.Sprint(err)
		if exitCode(err) != 2 || !strings.Contains(msg, "postgres://") || !strings.Contains(msg, "LEDGER_DB") || strings.Contains(msg, "s3cretpw") {
			t.Errorf("%v with LEDGER_DB=%q: %v (exit %d), want exit 2 asking for a postgres:// URL, naming LEDGER_DB, not the password", args, dsn, err, exitCode(err))
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("files made in the working directory: %v", entries)
	}
}

// TestEnvValueWithSpaceAroundRefused: a stray space at the end of a line
// of an env file (LEDGER_DB=./data/ledger.db ), or the newline a secret
// file ends with, became part of the value: serve created a new, empty log
// "ledger.db " beside the real one and served an empty site, and a JWT
// secret ending in a newline verified no token the issuer signed. A value
// with white space at its start or end is a usage error naming the
// variable (not the value: it may be a secret).
func TestEnvValueWithSpaceAroundRefused(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "ledger.db")
	mustFill(t, db, 1)
	secret := strings.Repeat("s", 32)
	cases := []struct {
		name, value string
		args        []string
	}{
		{"LEDGER_DB", db + " ", []string{"serve", "--listen", "127.0.0.1:0"}},
		{"LEDGER_DB", " " + db, []string{"stats"}},
		{"LEDGER_JWT_SECRET", secret + "\n", []string{"serve", "--db", db, "--listen", "127.0.0.1:0"}},
		{"LEDGER_HEARTBEAT", "15s ", []string{"serve", "--db", db, "--listen", "127.0.0.1:0"}},
	}
	for _, c := range cases {
		_, err := runEnv(t, map[string]string{c.name: c.value}, c.args...)
		msg := fmt.Sprint(err)
		if exitCode(err) != 2 || !strings.Contains(msg, c.name) || strings.Contains(msg, secret) {
			t.Errorf("%s=%q: %v (exit %d), want exit 2 naming %s, not the value", c.name, c.value, err, exitCode(err), c.name)
		}
	}
	if _, err := os.Stat(db + " "); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%q: %v, want no such log made", db+" ", err)
	}
}

// TestNameVariablesOnlyTheFlagsMentioned: a usage error names the
// variables of the flags it is about, not one whose name is part of a path
// ("db" in "ledger.db").
func TestNameVariablesOnlyTheFlagsMentioned(t *testing.T) {
	e := env{fromEnv: map[string]string{"db": "LEDGER_DB", "listen": "LEDGER_LISTEN", "kinds": "LEDGER_KINDS"}}
	err := e.nameVariables(usageErr(`--cpuprofile: open /srv/ledger.db.prof: permission denied; listen "x": bad`))
	if msg := err.Error(); !strings.HasSuffix(msg, "(set by LEDGER_LISTEN)") {
		t.Errorf("got %q, want only LEDGER_LISTEN named", msg)
	}
}
