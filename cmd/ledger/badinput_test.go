package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
