package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// envProbeValues are values every flag is given, once as a flag and once
// as its variable: some of them wrong for each kind of flag (a duration,
// a number, a boolean, an address, a name).
var envProbeValues = []string{"x", "-1", "0", "1.5", "1000000", "99999999999999999999", "-1s", "NaN", "::", "true", "a,,b"}

// TestEnvValueRefusedAsItsFlag: for every flag of serve and of the other
// commands below (read from their flag sets, so a new flag is covered
// without a word here), a value given by its LEDGER_* variable gets what
// the same value as the flag gets: refused with exit 2 both ways or taken
// both ways, never a panic. A refusal of the value (the command line
// without it is taken) names the variable, and the value where the flag's
// refusal says it.
func TestEnvValueRefusedAsItsFlag(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // a value taken as a file name (--out x) lands in a temporary directory
	db := filepath.Join(dir, "h3_env.db")
	mustFill(t, db, 1)
	plain := filepath.Join(dir, "h3_plain.txt")
	if err := os.WriteFile(plain, []byte("not a database\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(dir, "h3_backup.db")
	if _, errOut, err := runCLI(t, "backup", "--db", db, "--out", backup); err != nil {
		t.Fatalf("backup: %v\n%s", err, errOut)
	}
	n := 0
	fresh := func() string { n++; return filepath.Join(dir, fmt.Sprintf("h3_out%d.db", n)) }
	// The flags that make each command's run a good one, so that what is
	// refused is the value probed.
	good := map[string]func() map[string]string{
		"asof":   func() map[string]string { return map[string]string{"db": db, "out": fresh(), "position": "1"} },
		"backup": func() map[string]string { return map[string]string{"db": db, "out": fresh()} },
		// The run's context is canceled: restore copies nothing, moves nothing.
		"restore": func() map[string]string { return map[string]string{"db": fresh(), "from": backup} },
	}
	for _, args := range [][]string{{"serve"}, {"history"}, {"stats"}, {"verify"}, {"rebuild"}, {"asof"},
		{"backup"}, {"restore"}, {"relay", "nats"}} {
		flagSetOf(t, args...).VisitAll(func(f *flag.Flag) {
			if _, ok := f.Value.(commandLineOnly); ok {
				return
			}
			for _, v := range append(slices.Clone(envProbeValues), db, plain) { // and files that exist
				checkEnvAsFlag(t, args, func(own bool) []string {
					flags := map[string]string{"db": db}
					if g, ok := good[args[0]]; ok {
						flags = g()
					}
					if !own {
						delete(flags, f.Name)
					}
					// Each run in a directory of its own: a file one made
					// (--out x) is not in the other's way.
					if err := os.Chdir(t.TempDir()); err != nil {
						t.Fatal(err)
					}
					base := slices.Clone(args)
					for _, k := range slices.Sorted(maps.Keys(flags)) {
						base = append(base, "--"+k+"="+flags[k])
					}
					return base
				}, f.Name, v)
			}
		})
	}
}

// checkEnvAsFlag runs the command line base(false) returns with
// --name=v, then another base(false) with LEDGER_NAME=v, and compares the
// two; and base(true), which gives the flag its good value if it has one,
// to tell whether a refusal is the value's.
func checkEnvAsFlag(t *testing.T, args []string, base func(own bool) []string, name, v string) {
	t.Helper()
	variable := envName(name)
	asFlag := runNoPanic(t, append(base(false), "--"+name+"="+v), nil)
	asEnv := runNoPanic(t, base(false), map[string]string{variable: v})
	what := fmt.Sprintf("ledger %s: --%s=%s: %v (exit %d); %s=%s: %v (exit %d)", strings.Join(args, " "),
		name, v, asFlag, exitCode(asFlag), variable, v, asEnv, exitCode(asEnv))
	if (exitCode(asFlag) == 2) != (exitCode(asEnv) == 2) {
		t.Errorf("%s: refused one way only", what)
	}
	if exitCode(asEnv) != 2 || exitCode(runNoPanic(t, base(true), nil)) == 2 {
		return // taken, or refused for something else than the value
	}
	if !strings.Contains(asEnv.Error(), variable) {
		t.Errorf("%s: the refusal does not name %s", what, variable)
	}
	if exitCode(asFlag) == 2 && strings.Contains(asFlag.Error(), v) && !secretFlag(name) && !strings.Contains(asEnv.Error(), v) {
		t.Errorf("%s: the refusal does not say the value", what)
	}
}

// secretFlag reports whether a flag's value is a secret, which a message
// never prints.
func secretFlag(name string) bool { return strings.Contains(name, "secret") }

// runNoPanic runs the CLI with vars as its environment and a context
// already canceled (a serve or relay that starts stops at once), turning
// a panic into a failure of the test.
func runNoPanic(t *testing.T, args []string, vars map[string]string) (err error) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Errorf("ledger %q with %v: panic: %v", args, vars, p)
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	ctx, cancel := context.WithCancel(t.Context())
	if args[0] == "serve" || args[0] == "relay" {
		cancel()
	}
	defer cancel()
	return run(ctx, args, func(k string) string { return vars[k] }, io.Discard, io.Discard)
}
