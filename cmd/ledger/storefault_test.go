package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/faultfs"
)

// faultWrites sends n concurrent writes with padded metadata to distinct
// streams and sorts the answers: acknowledged (200) writes, and 503
// problems. Any other answer fails the test.
func faultWrites(t *testing.T, s *served, prefix string, n int) (acked []ack, unavailable []string) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, body := s.call(t, "PUT", fmt.Sprintf("/v1/targets/article/%s%d/like/u%d", prefix, i%97, i), padding, "Content-Type", "application/json")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case res.StatusCode == 200:
				var a ack
				if err := json.Unmarshal(body, &a); err != nil {
					t.Errorf("ack %s: %v", body, err)
				}
				acked = append(acked, a)
			case res.StatusCode == 503 && res.Header.Get("Retry-After") != "" && res.Header.Get("Content-Type") == "application/problem+json":
				unavailable = append(unavailable, string(body))
			default:
				t.Errorf("write during a store fault: %d %s", res.StatusCode, body)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return acked, unavailable
}

// writeUntilRefused writes rounds of 100 until a round has refused
// writes (503s), and returns what was acknowledged and the refusals.
func writeUntilRefused(t *testing.T, s *served, fault string) (acked []ack, problems []string) {
	t.Helper()
	for round := 0; len(problems) == 0; round++ {
		if round == 40 {
			t.Fatalf("%s never refused a write (%d acknowledged)", fault, len(acked))
		}
		got, bad := faultWrites(t, s, fmt.Sprintf("full%d-", round), 100)
		acked, problems = append(acked, got...), bad
	}
	return acked, problems
}

// freeSpace removes the filler and waits until a write succeeds again; it
// returns acked with what was acknowledged meanwhile.
func freeSpace(t *testing.T, s *served, filler string, acked []ack) []ack {
	t.Helper()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		got, bad := faultWrites(t, s, "after", 1)
		acked = append(acked, got...)
		return len(bad) == 0
	}, "a write after space was freed")
	return acked
}

// TestStoreDiskFull fills the file system under a running server (a
// size-limited tmpfs). Writes must answer 503 with a problem that says
// the disk is full, reads keep working, /readyz goes not ready; once space
// is freed, writes succeed again without a restart; every acknowledged
// write is in the log afterwards.
func TestStoreDiskFull(t *testing.T) {
	dir := faultfs.Mount(t, "24m", false)
	db := filepath.Join(dir, "ledger.db")
	s := startServe(t, db, nil, "--consistency-timeout", "1s")
	acked, _ := faultWrites(t, s, "before", 50)
	filler := faultfs.Fill(t, dir)
	got, problems := writeUntilRefused(t, s, "the full disk")
	acked = append(acked, got...)
	mustContain(t, problems[0], "store-unavailable", "disk full")
	s.want(t, 200, "GET", "/v1/targets/article/before1?viewer=u1", "")
	s.want(t, 503, "GET", "/readyz", "")
	acked = freeSpace(t, s, filler, acked)
	mustRecover(t, s, db, acked, "after space was freed")
}

// TestViewsDiskFull fills the disk of the views file only: the log takes
// the writes, the projections cannot apply them. The server must stay up
// (it exited when the projections' pipeline stopped), say why in /readyz,
// answer writes 503 saying they are durable, and go on by itself once
// space is freed, with every acknowledged write in the log and the views
// equal to it.
func TestViewsDiskFull(t *testing.T) {
	dir := faultfs.Mount(t, "8m", false)
	db, views := filepath.Join(t.TempDir(), "ledger.db"), filepath.Join(dir, "ledger.views")
	s := startServe(t, db, nil, "--views", views, "--consistency-timeout", "1s")
	acked, _ := faultWrites(t, s, "before", 20)
	filler := faultfs.Fill(t, dir)
	got, problems := writeUntilRefused(t, s, "the full views disk")
	acked = append(acked, got...)
	mustContain(t, problems[0], "not-caught-up", "the write is durable", "projection failed")
	mustContain(t, string(s.want(t, 503, "GET", "/readyz", "")), "projection failed")
	select {
	case err := <-s.done:
		t.Fatalf("serve exited on a full views disk: %v\n%s", err, s.logs)
	default:
	}
	acked = freeSpace(t, s, filler, acked)
	s.want(t, 200, "GET", "/readyz", "")
	s.stop(t)
	checkLog(t, db, changedOnly(acked))
	if out, errOut, err := runCLI(t, "verify", "--db", db, "--views", views); err != nil {
		t.Fatalf("verify: %v\n%s%s", err, out, errOut)
	}
}

// chattr sets or clears the immutable attribute of files: on ext4 it makes
// even writes through descriptors the server already holds fail (EPERM),
// which is a read-only database file for root too.
func chattr(t *testing.T, flag string, paths ...string) {
	t.Helper()
	args := append([]string{flag}, paths...)
	if out, err := exec.Command("chattr", args...).CombinedOutput(); err != nil {
		t.Fatalf("chattr %v: %v: %s", args, err, out)
	}
}

// TestStoreReadOnly makes the log's files read-only under a running server
// (ext4 immutable attribute, which root cannot write through either).
// Writes must answer 503 naming the fault, reads keep working, /readyz
// goes not ready; once the files are writable again, writes succeed
// without a restart and every acknowledged write is in the log.
func TestStoreReadOnly(t *testing.T) {
	dir := faultfs.Mount(t, "64M", true)
	db := filepath.Join(dir, "ledger.db")
	s := startServe(t, db, nil, "--consistency-timeout", "1s")
	acked, _ := faultWrites(t, s, "before", 50)
	logFiles := []string{db, db + "-wal"}
	chattr(t, "+i", logFiles...)
	t.Cleanup(func() { exec.Command("chattr", append([]string{"-i"}, logFiles...)...).Run() })
	got, problems := faultWrites(t, s, "ro", 20)
	if len(got) > 0 || len(problems) != 20 {
		t.Fatalf("read-only log: %d writes acknowledged, %d refused", len(got), len(problems))
	}
	mustContain(t, problems[0], "store-unavailable", "cannot accept writes right now: ")
	s.want(t, 200, "GET", "/v1/targets/article/before1?viewer=u1", "")
	s.want(t, 200, "GET", "/v1/events?limit=10", "")
	s.want(t, 503, "GET", "/readyz", "")
	chattr(t, "-i", logFiles...)
	mustRecover(t, s, db, acked, "after the files became writable")
}

// TestStoreFileVanished renames the log file away under a running server
// (an operator's mistake, a cleanup script). SQLite keeps writing to the
// open, now nameless, file, so a restart would start from an empty log:
// writes must answer 503 while the file is gone, reads keep working,
// /readyz goes not ready; when the file is back, writes resume without a
// restart and every acknowledged write is in it.
func TestStoreFileVanished(t *testing.T) {
	db := filepath.Join(t.TempDir(), "ledger.db")
	s := startServe(t, db, nil, "--consistency-timeout", "1s")
	acked, _ := faultWrites(t, s, "before", 50)
	moved := db + ".moved"
	if err := os.Rename(db, moved); err != nil {
		t.Fatal(err)
	}
	got, problems := faultWrites(t, s, "gone", 20)
	if len(got) > 0 || len(problems) != 20 {
		t.Fatalf("vanished log: %d writes acknowledged, %d refused", len(got), len(problems))
	}
	mustContain(t, problems[0], "store-unavailable", "cannot accept writes right now: ")
	s.want(t, 200, "GET", "/v1/targets/article/before1?viewer=u1", "")
	s.want(t, 503, "GET", "/readyz", "")
	if err := os.Rename(moved, db); err != nil {
		t.Fatal(err)
	}
	more, bad := faultWrites(t, s, "after", 50)
	if len(bad) > 0 {
		t.Fatalf("after the file came back: %s", bad[0])
	}
	s.want(t, 200, "GET", "/readyz", "")
	s.stop(t)
	checkLog(t, db, changedOnly(append(acked, more...)))
}

// TestStoreReadOnlyAtStart starts the server on a log file that is
// read-only from the beginning: it must refuse to start with an error that
// names the cause, leave the file as it was, and start normally once the
// file is writable.
func TestStoreReadOnlyAtStart(t *testing.T) {
	dir := faultfs.Mount(t, "64M", true)
	db := filepath.Join(dir, "ledger.db")
	s := startServe(t, db, nil)
	acked, _ := faultWrites(t, s, "before", 20)
	s.stop(t)
	files, _ := filepath.Glob(db + "*")
	chattr(t, "+i", files...)
	t.Cleanup(func() { exec.Command("chattr", append([]string{"-i"}, files...)...).Run() })
	_, _, err := runCLI(t, "serve", "--listen", "127.0.0.1:0", "--db", db)
	if err == nil {
		t.Fatal("serve started on a read-only log")
	}
	mustContain(t, err.Error(), "read-only")
	chattr(t, "-i", files...)
	checkLog(t, db, changedOnly(acked))
	s = startServe(t, db, nil)
	MustStayHealthy(t, s)
}

// TestStoreFileDeleted deletes the log file under a running server: no
// write may be acknowledged into the deleted file (503 naming the cause),
// reads of what the server has keep working, /readyz goes not ready.
func TestStoreFileDeleted(t *testing.T) {
	db := filepath.Join(t.TempDir(), "ledger.db")
	s := startServe(t, db, nil, "--consistency-timeout", "1s")
	faultWrites(t, s, "before", 20)
	if err := os.Remove(db); err != nil {
		t.Fatal(err)
	}
	got, problems := faultWrites(t, s, "gone", 20)
	if len(got) > 0 || len(problems) != 20 {
		t.Fatalf("deleted log: %d writes acknowledged, %d refused", len(got), len(problems))
	}
	mustContain(t, problems[0], "moved or deleted")
	s.want(t, 200, "GET", "/v1/targets/article/before1?viewer=u1", "")
	s.want(t, 503, "GET", "/readyz", "")
}

// mustRecover checks that service resumed once a fault cleared: 50 more
// writes succeed, the server is ready and healthy, and after it stops
// every acknowledged write is in the log and verify passes.
func mustRecover(t *testing.T, s *served, db string, acked []ack, when string) {
	t.Helper()
	more, bad := faultWrites(t, s, "after", 50)
	if len(bad) > 0 {
		t.Fatalf("%s: %s", when, bad[0])
	}
	s.want(t, 200, "GET", "/readyz", "")
	MustStayHealthy(t, s)
	s.stop(t)
	checkLog(t, db, changedOnly(append(acked, more...)))
	if out, errOut, err := runCLI(t, "verify", "--db", db); err != nil {
		t.Fatalf("verify: %v\n%s%s", err, out, errOut)
	}
}

// TestViewsReadOnlyAtStart: a server does not start on a views file it
// cannot write, and says so. SQLite opens such a file read-only without a
// word, so the server came up ready, then failed at its first write
// ("attempt to write a readonly database") and never healed once the file
// was writable again: its connection stayed read-only until a restart.
func TestViewsReadOnlyAtStart(t *testing.T) {
	dir := faultfs.Mount(t, "64M", true)
	db, views := filepath.Join(t.TempDir(), "ledger.db"), filepath.Join(dir, "ledger.views")
	s := startServe(t, db, nil, "--views", views)
	acked, _ := faultWrites(t, s, "before", 10)
	s.stop(t)
	files, _ := filepath.Glob(views + "*")
	chattr(t, "+i", files...)
	t.Cleanup(func() { exec.Command("chattr", append([]string{"-i"}, files...)...).Run() })
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	err := run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--db", db, "--views", views}, func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil {
		t.Fatal("serve started on a read-only views file")
	}
	mustContain(t, err.Error(), "read-only", views)
	chattr(t, "-i", files...)
	s = startServe(t, db, nil, "--views", views)
	more, _ := faultWrites(t, s, "after", 10)
	acked = append(acked, more...)
	s.stop(t)
	checkLog(t, db, changedOnly(acked))
}

// TestViewsFileMovedUnderServer: a views file moved away under a running
// server while it takes writes. The server must stay up and say why in
// /readyz, as for a full views disk, until it is restarted: the pipeline
// stopped on the first batch (its error was not a projection failure) and
// the server exited with only "projection pipeline stopped".
func TestViewsFileMovedUnderServer(t *testing.T) {
	dir := t.TempDir()
	db, views := filepath.Join(dir, "ledger.db"), filepath.Join(dir, "ledger.views")
	s := startServe(t, db, nil, "--views", views, "--consistency-timeout", "1s")
	acked, _ := faultWrites(t, s, "before", 20)
	if err := os.Rename(views, filepath.Join(dir, "moved.views")); err != nil {
		t.Fatal(err)
	}
	got, _ := faultWrites(t, s, "after", 20)
	acked = append(acked, got...)
	time.Sleep(500 * time.Millisecond)
	select {
	case err := <-s.done:
		t.Fatalf("serve exited on a views file moved away: %v\n%s", err, s.logs)
	default:
	}
	mustContain(t, string(s.want(t, 503, "GET", "/readyz", "")), "no longer names the file")
	s.stop(t)
	checkLog(t, db, changedOnly(acked))
}

// TestStoreWritableWhileDiskFull: /readyz said the log was writable 10 s
// after a commit failed on a full disk, though the disk was still full
// (the store's check looked only at the file's permissions). The store's
// Writable now says the disk is full until space is freed.
func TestStoreWritableWhileDiskFull(t *testing.T) {
	dir := faultfs.Mount(t, "8m", false)
	store := mustOpenStore(t, filepath.Join(dir, "ledger.db"), storeOptions{})
	if err := store.Writable(t.Context()); err != nil {
		t.Fatalf("Writable on an empty disk: %v", err)
	}
	filler := faultfs.Fill(t, dir)
	if err := store.Writable(t.Context()); !errors.Is(err, domain.ErrUnavailable) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Writable on a full disk: %v, want ErrUnavailable saying the disk is full", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := store.Writable(t.Context()); err != nil {
		t.Fatalf("Writable once space was freed: %v", err)
	}
}
