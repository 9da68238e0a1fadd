package pathwatch

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// newTestWatch watches a new file dir/sub/log.db, with full checks only
// when the watches report a change (fullEvery an hour), so that each
// answer below comes from the watches when they are used.
func newTestWatch(t *testing.T) (w *Watch, dir, path string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "sub", "log.db")
	if err := os.Mkdir(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("log"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	w.fullEvery = time.Hour
	if runtime.GOOS == "linux" && w.watcher == nil {
		t.Fatal("no inotify watcher on Linux for a plain path")
	}
	return w, dir, path
}

func mustRename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

// createAndRemove makes two events for name in its directory.
func createAndRemove(t *testing.T, name string) {
	t.Helper()
	if err := os.WriteFile(name, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(name); err != nil {
		t.Fatal(err)
	}
}

// expect checks whether the path still names its file (want true) or
// not.
func expect(t *testing.T, w *Watch, want bool, when string) {
	t.Helper()
	changed, err := w.Changed()
	if err != nil {
		t.Fatalf("%s: %v", when, err)
	}
	if got := changed == ""; got != want {
		t.Fatalf("%s: path names its file: %v, want %v", when, got, want)
	}
}

// TestChangesOfThePath: every way of making the path name another file, or
// none, is seen at the first check after it, with no wait; undoing it is
// seen too.
func TestChangesOfThePath(t *testing.T) {
	cases := map[string]struct {
		change, undo func(t *testing.T, dir, path string)
	}{
		"file renamed": {
			func(t *testing.T, dir, path string) { mustRename(t, path, path+".moved") },
			func(t *testing.T, dir, path string) { mustRename(t, path+".moved", path) },
		},
		"file replaced by a rename over it": {
			func(t *testing.T, dir, path string) {
				mustRename(t, path, path+".kept")
				if err := os.WriteFile(path+".other", nil, 0o644); err != nil {
					t.Fatal(err)
				}
				mustRename(t, path+".other", path)
			},
			func(t *testing.T, dir, path string) { mustRename(t, path+".kept", path) },
		},
		"file deleted (a hard link keeps it)": {
			func(t *testing.T, dir, path string) {
				if err := os.Link(path, path+".link"); err != nil {
					t.Fatal(err)
				}
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			},
			func(t *testing.T, dir, path string) { mustRename(t, path+".link", path) },
		},
		"parent directory renamed": {
			func(t *testing.T, dir, path string) {
				mustRename(t, filepath.Join(dir, "sub"), filepath.Join(dir, "sub2"))
			},
			func(t *testing.T, dir, path string) {
				mustRename(t, filepath.Join(dir, "sub2"), filepath.Join(dir, "sub"))
			},
		},
		"parent directory replaced by a file": {
			func(t *testing.T, dir, path string) {
				mustRename(t, filepath.Join(dir, "sub"), filepath.Join(dir, "sub2"))
				if err := os.WriteFile(filepath.Join(dir, "sub"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			},
			func(t *testing.T, dir, path string) {
				if err := os.Remove(filepath.Join(dir, "sub")); err != nil {
					t.Fatal(err)
				}
				mustRename(t, filepath.Join(dir, "sub2"), filepath.Join(dir, "sub"))
			},
		},
		"grandparent directory renamed": {
			func(t *testing.T, dir, path string) { mustRename(t, dir, dir+".moved") },
			func(t *testing.T, dir, path string) { mustRename(t, dir+".moved", dir) },
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			w, dir, path := newTestWatch(t)
			expect(t, w, true, "before any change")
			c.change(t, dir, path)
			expect(t, w, false, "after the change")
			expect(t, w, false, "again")
			c.undo(t, dir, path)
			expect(t, w, true, "after undoing it")
		})
	}
}

// TestOtherNamesCostNoStat: while nothing touches the path, checks read
// the watches only, however many other files come and go beside it.
func TestOtherNamesCostNoStat(t *testing.T) {
	w, dir, path := newTestWatch(t)
	if w.watcher == nil {
		t.Skip("inotify is Linux only")
	}
	for i := range 200 {
		for _, other := range []string{path + "-wal", filepath.Join(dir, "x"+strconv.Itoa(i))} {
			createAndRemove(t, other)
		}
		expect(t, w, true, "with other names changing")
	}
	if w.stats != 0 {
		t.Fatalf("%d full checks while only other names changed, want 0", w.stats)
	}
	mustRename(t, path, path+".moved")
	expect(t, w, false, "after the file moved")
	if w.stats != 1 {
		t.Fatalf("%d full checks after the move, want 1", w.stats)
	}
}

// TestOverflowFallsBackToStat: when more events arrive than the queue
// holds, the Watch can no longer know; it stats, and still answers right.
func TestOverflowFallsBackToStat(t *testing.T) {
	w, dir, _ := newTestWatch(t)
	if w.watcher == nil {
		t.Skip("inotify is Linux only")
	}
	limit, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(limit)))
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other")
	for range n/2 + 1 { // two events each
		createAndRemove(t, other)
	}
	expect(t, w, true, "after an overflow")
	if w.stats != 1 {
		t.Fatalf("%d full checks after an overflow, want 1", w.stats)
	}
}

// TestFullCheckEvery: a full check runs once fullEvery has passed, even
// when the watches report nothing.
func TestFullCheckEvery(t *testing.T) {
	w, _, _ := newTestWatch(t)
	w.fullEvery = time.Nanosecond
	expect(t, w, true, "first")
	expect(t, w, true, "second")
	if w.stats != 2 {
		t.Fatalf("%d full checks, want 2", w.stats)
	}
}

// TestSymlinkedPathStats: a path through a symbolic link gets no watches
// (its target's directories would need their own), and every check stats.
func TestSymlinkedPathStats(t *testing.T) {
	_, dir, path := newTestWatch(t)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(filepath.Join(dir, "sub"), link); err != nil {
		t.Fatal(err)
	}
	w, err := New(filepath.Join(link, "log.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.watcher != nil {
		t.Fatal("watches on a path through a symbolic link")
	}
	expect(t, w, true, "through the link")
	mustRename(t, path, path+".moved")
	expect(t, w, false, "after the file moved")
}

// TestNewMissingFile: New needs the file to exist.
func TestNewMissingFile(t *testing.T) {
	if _, err := New(filepath.Join(t.TempDir(), "none.db")); err == nil {
		t.Fatal("New of a missing file succeeded")
	}
}

// TestClosedWatchStats: after Close, checks still answer, by stat.
func TestClosedWatchStats(t *testing.T) {
	w, _, path := newTestWatch(t)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	expect(t, w, true, "after Close")
	mustRename(t, path, path+".moved")
	expect(t, w, false, "moved after Close")
}

// TestSiblings: a file beside the path given to New (a database's WAL) is
// watched by the same watches: its deletion is seen at the next check and
// named by Changed, while other names beside it (the -shm) change nothing.
func TestSiblings(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "log.db")
	for _, p := range []string{path, path + "-wal"} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w, err := New(path, "log.db-wal")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.fullEvery = time.Hour
	createAndRemove(t, path+"-shm")
	if got, err := w.Changed(); got != "" || err != nil || (runtime.GOOS == "linux" && w.stats != 0) {
		t.Fatalf("another name changed: Changed() = %q, %v after %d full checks", got, err, w.stats)
	}
	if err := os.Remove(path + "-wal"); err != nil {
		t.Fatal(err)
	}
	if got, err := w.Changed(); got != path+"-wal" || err != nil {
		t.Fatalf("the sibling deleted: Changed() = %q, %v; want %q", got, err, path+"-wal")
	}
	if _, err := New(path, "missing-wal"); err == nil {
		t.Fatal("New with a missing sibling succeeded")
	}
}

// TestStatErrorIsNoChange: a stat that fails for another reason than a
// missing file (EIO on a network file system, EACCES during a permission
// change) says nothing about which file the path names. Changed returns
// the error and no path, so that no caller takes a passing failure for a
// replaced file; the next check that can stat answers again.
func TestStatErrorIsNoChange(t *testing.T) {
	w, _, path := newTestWatch(t)
	w.fullEvery = 0 // every check stats
	w.stat = func(p string) (os.FileInfo, error) {
		return nil, &fs.PathError{Op: "stat", Path: p, Err: syscall.EIO}
	}
	got, err := w.Changed()
	if got != "" || !errors.Is(err, syscall.EIO) {
		t.Fatalf("stat failing with EIO: Changed() = %q, %v; want \"\" and EIO", got, err)
	}
	w.stat = os.Stat
	if got, err := w.Changed(); got != "" || err != nil {
		t.Fatalf("stat working again: Changed() = %q, %v; want \"\", nil", got, err)
	}
	mustRename(t, path, path+".moved")
	if got, err := w.Changed(); got != path || err != nil {
		t.Fatalf("after the file moved: Changed() = %q, %v; want %q, nil", got, err, path)
	}
}
