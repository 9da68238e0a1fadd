package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/interactionledger/ledger/domain"
)

// TestBackupUnderWrites: a backup taken while a writer appends is the
// log as it stood at one moment: its history is a prefix of the log's,
// with the log's identity and the log file's permissions, and nothing is
// left beside it.
func TestBackupUnderWrites(t *testing.T) {
	dir := t.TempDir()
	src, out := filepath.Join(dir, "ledger.db"), filepath.Join(dir, "backup.db")
	mustFill(t, src, 200)
	if err := os.Chmod(src, 0o640); err != nil {
		t.Fatal(err)
	}
	stop := keepWriting(t, src)
	stdout, _, err := runCLI(t, "backup", "--db", src, "--out", out)
	stop()
	if err != nil {
		t.Fatal(err)
	}
	copied, _, err := runCLI(t, "history", "--db", out)
	if err != nil {
		t.Fatal(err)
	}
	all, _, err := runCLI(t, "history", "--db", src)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(copied, "\n"); n < 400 || !strings.HasPrefix(all, copied) {
		t.Fatalf("the backup's %d events are not the log's first ones (the log holds %d)", n, strings.Count(all, "\n"))
	}
	head := logHead(t, out)
	if want := fmt.Sprintf("backed up log %s (schema ", logIDAt(t, src)); !strings.Contains(stdout, want) ||
		!strings.Contains(stdout, fmt.Sprintf("up to position %d ", head)) {
		t.Fatalf("backup said %q; want the log's id and the copy's head %d", stdout, head)
	}
	if logIDAt(t, out) != logIDAt(t, src) {
		t.Fatal("the backup is another log")
	}
	if info, err := os.Stat(out); err != nil || info.Mode().Perm() != 0o640 {
		t.Fatalf("the backup's mode: %v %v; want the log's 0640", info.Mode(), err)
	}
	noTemporaryFiles(t, dir)
}

// keepWriting has a writer like targets in the log at db until the
// returned stop is called.
func keepWriting(t *testing.T, db string) (stop func()) {
	l, done := mustLedgerAt(t, db)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tg, _ := domain.ParseTarget("article/w")
		k, _ := domain.ParseKind("like")
		for i := 0; ; i++ {
			select {
			case <-quit:
				return
			default:
			}
			u, _ := domain.NewUserID("w" + itoa(i))
			if _, err := l.Set(context.Background(), domain.SetRequest{User: u, Target: tg, Kind: k, On: true}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	return func() { close(quit); wg.Wait(); done() }
}

// noTemporaryFiles fails when dir holds a backup's temporary file.
func noTemporaryFiles(t *testing.T, dir string) {
	t.Helper()
	tmps, _ := filepath.Glob(filepath.Join(dir, "*.tmp*"))
	if len(tmps) > 0 {
		t.Fatalf("left behind: %v", tmps)
	}
}

// nothingWritten fails when a backup that did not end left a file at out
// or a temporary file in dir.
func nothingWritten(t *testing.T, dir, out string) {
	t.Helper()
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a backup that did not end left %s: %v", out, err)
	}
	noTemporaryFiles(t, dir)
}

func TestBackupRefusals(t *testing.T) {
	dir := t.TempDir()
	src, views := logWithViews(t, dir)
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	newOut := filepath.Join(dir, "new.db")
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"--db", src}, "--out FILE.db is required"},
		{[]string{"--db", src, "--out", "-"}, "never to stdout"},
		{[]string{"--db", src, "--out", text}, "notes.txt exists"},
		{[]string{"--db", src, "--out", src}, "is a file of the store"},
		{[]string{"--db", src, "--out", src + "-wal"}, "is a file of the store"},
		{[]string{"--db", src, "--out", dir}, "is a directory"},
		{[]string{"--db", src, "--out", filepath.Join(dir, "nodir", "b.db")}, "nodir"},
		{[]string{"--db", filepath.Join(dir, "missing.db"), "--out", newOut}, "missing.db: no such file"},
		{[]string{"--db", views, "--out", newOut}, "no event log in the file"},
		{[]string{"--db", legacySample, "--out", newOut}, "not a SQLite database"},
		{[]string{"--db", "postgres://u:s3cret@127.0.0.1/test", "--out", newOut}, "is a PostgreSQL log"},
		{[]string{"--db", "Postgres://u:s3cret@127.0.0.1/test", "--out", newOut}, "in lower case"},
		{[]string{"--db", src, "--out", newOut, "extra"}, "extra"},
	} {
		_, _, err := runCLI(t, append([]string{"backup"}, c.args...)...)
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), c.says) || strings.Contains(fmt.Sprint(err), "s3cret") {
			t.Errorf("backup %v: %v; want exit 2 saying %q", c.args, err, c.says)
		}
	}
	if b, err := os.ReadFile(text); err != nil || string(b) != "mine" {
		t.Fatalf("a refused backup changed %s: %q %v", text, b, err)
	}
	nothingWritten(t, dir, newOut)
}

// TestBackupInterrupted: a backup stopped before its end leaves no file
// at --out and no temporary file beside it.
func TestBackupInterrupted(t *testing.T) {
	dir := t.TempDir()
	src, out := filepath.Join(dir, "ledger.db"), filepath.Join(dir, "backup.db")
	mustFill(t, src, 3)
	err := runCanceled(t, "backup", "--db", src, "--out", out)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("backup with its context canceled: %v", err)
	}
	nothingWritten(t, dir, out)
}

// TestBackupOfAMovedLog: a log moved to another store (import log) is
// backed up as it is, sealed, and the backup says so.
func TestBackupOfAMovedLog(t *testing.T) {
	dir := t.TempDir()
	src, out := filepath.Join(dir, "ledger.db"), filepath.Join(dir, "backup.db")
	mustFill(t, src, 3)
	if _, errOut, err := runCLI(t, "import", "log", src, "--db", filepath.Join(dir, "moved.db")); err != nil {
		t.Fatalf("import log: %v\n%s", err, errOut)
	}
	stdout, _, err := runCLI(t, "backup", "--db", src, "--out", out)
	if err != nil || !strings.Contains(stdout, "the log moved to "+filepath.Join(dir, "moved.db")) {
		t.Fatalf("backup of a moved log: %v, %q; want it to say the log moved", err, stdout)
	}
	store, err := openStore(t.Context(), out, storeOptions{}, nil)
	if err == nil {
		store.Close()
	}
	if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "moved") {
		t.Fatalf("opening the backup of a moved log to write: %v; want it refused as the log is", err)
	}
}
