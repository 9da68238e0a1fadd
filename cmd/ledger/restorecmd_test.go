package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRestorePutsTheBackupBack: restore puts a backup in the log's place
// and sets aside the log that was there with its WAL (a server killed
// with uncheckpointed commits left one) and its views file, which is of
// the newer log: a server then starts on the restored log and serves its
// state, and the log set aside still holds every event it had.
func TestRestorePutsTheBackupBack(t *testing.T) {
	dir := t.TempDir()
	db, backup := filepath.Join(dir, "ledger.db"), filepath.Join(dir, "backup.db")
	mustFill(t, db, 100)
	if _, errOut, err := runCLI(t, "rebuild", "--db", db); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, errOut)
	}
	if _, errOut, err := runCLI(t, "backup", "--db", db, "--out", backup); err != nil {
		t.Fatalf("backup: %v\n%s", err, errOut)
	}
	mustFill(t, db, 150)
	server, url := startServerChild(t, db)
	if res, b := httpDo(t, http.MethodPut, url+"/v1/targets/article/a2/like/u1"); res.StatusCode != http.StatusOK {
		t.Fatalf("write: %s %s", res.Status, b)
	}
	server.kill()
	if info, err := os.Stat(db + "-wal"); err != nil || info.Size() == 0 {
		t.Fatalf("the killed server left no WAL to set aside: %v", err)
	}

	stdout, errOut, err := runCLI(t, "restore", "--db", db, "--from", backup)
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, errOut)
	}
	if _, err := os.Stat(db + "-wal"); err == nil {
		t.Fatal("a WAL is left beside the restored log")
	}
	if head := logHead(t, db); head != 200 || logIDAt(t, db) != logIDAt(t, backup) {
		t.Fatalf("the restored log is at %d (want the backup's 200), id %s (want %s)", head, logIDAt(t, db), logIDAt(t, backup))
	}
	aside := asideFiles(t, db)
	if len(aside) != 1 || logHead(t, aside[0]) != 501 {
		t.Fatalf("set aside %v; want the log that was there, with its 501 events", aside)
	}
	if views := asideFiles(t, db+".views"); len(views) != 1 {
		t.Fatalf("views set aside: %v; want the newer log's views file", views)
	}
	for _, want := range []string{"up to position 200 ", aside[0], "412 position-beyond-log"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("restore said %q; want %q in it", stdout, want)
		}
	}
	noTemporaryFiles(t, dir)

	_, url = startServerChild(t, db) // refused on views of the newer log, had they been left
	if likes := likesOf(t, url+"/v1/targets/article/a2"); likes != 0 {
		t.Fatalf("article/a2 has %d likes on the restored log; the backup had none", likes)
	}
}

// TestRestoreRefusals: what cannot be restored, and a log a server runs
// on, are refused with exit 2 naming the value, the log left as it was
// and nothing set aside.
func TestRestoreRefusals(t *testing.T) {
	dir := t.TempDir()
	db, views := logWithViews(t, dir)
	backup := filepath.Join(dir, "backup.db")
	if _, errOut, err := runCLI(t, "backup", "--db", db, "--out", backup); err != nil {
		t.Fatalf("backup: %v\n%s", err, errOut)
	}
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	const pg = "postgres://u:s3cret@127.0.0.1/test"
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"--db", db}, "--from FILE.db is required"},
		{[]string{"--db", db, "--from", filepath.Join(dir, "missing.db")}, "missing.db: no such file"},
		{[]string{"--db", db, "--from", text}, "not a SQLite database"},
		{[]string{"--db", db, "--from", views}, "no event log in the file"},
		{[]string{"--db", db, "--from", db}, "is a file of the store"},
		{[]string{"--db", db, "--from", db + "-wal"}, "is a file of the store"},
		{[]string{"--db", db, "--from", dir}, "not a SQLite database"},
		{[]string{"--db", db, "--from", pg}, "is a PostgreSQL URL"},
		{[]string{"--db", pg, "--from", backup}, "is a PostgreSQL log"},
		{[]string{"--db", dir, "--from", backup}, "is a directory"},
		{[]string{"--db", filepath.Join(dir, "nodir", "ledger.db"), "--from", backup}, "nodir"},
		{[]string{"--db", db, "--from", backup, "extra"}, "extra"},
	} {
		_, _, err := runCLI(t, append([]string{"restore"}, c.args...)...)
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), c.says) || strings.Contains(fmt.Sprint(err), "s3cret") {
			t.Errorf("restore %v: %v; want exit 2 saying %q", c.args, err, c.says)
		}
	}
	server, _ := startServerChild(t, db, "--views", views)
	_, _, err := runCLI(t, "restore", "--db", db, "--views", views, "--from", backup)
	if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "a server is running on it") {
		t.Errorf("restore under a running server: %v; want exit 2 saying a server is running", err)
	}
	server.kill()
	if head := logHead(t, db); head != 6 {
		t.Fatalf("a refused restore changed the log: head %d, want 6", head)
	}
	if aside := append(asideFiles(t, db), asideFiles(t, views)...); len(aside) != 0 {
		t.Fatalf("a refused restore set aside %v", aside)
	}
	noTemporaryFiles(t, dir)
}

// TestRestoreThatFailsPutsBack: a restore that fails after it set the
// log and its views file aside (here placing the copy fails), or that is
// interrupted before, leaves them where they were, with nothing else there.
func TestRestoreThatFailsPutsBack(t *testing.T) {
	dir := t.TempDir()
	db, views := logWithViews(t, dir)
	backup := filepath.Join(dir, "backup.db")
	if _, errOut, err := runCLI(t, "backup", "--db", db, "--out", backup); err != nil {
		t.Fatalf("backup: %v\n%s", err, errOut)
	}
	mustFill(t, db, 5) // the log moves past the backup's 6 events
	placeRestored = func(string, string) error { return errors.New("no room") }
	t.Cleanup(func() { placeRestored = placeCopy })
	_, _, err := runCLI(t, "restore", "--db", db, "--views", views, "--from", backup)
	if err == nil || !strings.Contains(err.Error(), "no room") {
		t.Fatalf("restore: %v; want the placing's failure", err)
	}
	placeRestored = placeCopy
	if err := runCanceled(t, "restore", "--db", db, "--views", views, "--from", backup); err == nil {
		t.Fatal("an interrupted restore succeeded")
	}
	if head := logHead(t, db); head != 16 {
		t.Fatalf("the log after a failed restore is at %d, want its own 16", head)
	}
	if _, errOut, err := runCLI(t, "verify", "--db", db, "--views", views); err != nil {
		t.Fatalf("the views file after a failed restore: %v\n%s", err, errOut)
	}
	if aside := append(asideFiles(t, db), asideFiles(t, views)...); len(aside) != 0 {
		t.Fatalf("a failed restore left %v", aside)
	}
	noTemporaryFiles(t, dir)
}

// asideFiles are the files restore set aside in place of the SQLite file
// at path (not their -wal and -shm).
func asideFiles(t *testing.T, path string) []string {
	t.Helper()
	all, err := filepath.Glob(path + ".before-restore-*")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range all {
		if !strings.HasSuffix(f, "-wal") && !strings.HasSuffix(f, "-shm") {
			files = append(files, f)
		}
	}
	return files
}

// likesOf is the like count a target read at url answers.
func likesOf(t *testing.T, url string) int64 {
	t.Helper()
	res, b := httpDo(t, http.MethodGet, url)
	var body struct {
		Counts map[string]int64 `json:"counts"`
	}
	if res.StatusCode != http.StatusOK || json.Unmarshal(b, &body) != nil {
		t.Fatalf("GET %s: %s %s", url, res.Status, b)
	}
	return body.Counts["like"]
}
