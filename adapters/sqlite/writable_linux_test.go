package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/interactionledger/ledger/domain"
	"golang.org/x/sys/unix"
)

// fileWritable (Writable's check of the file) must never open the log:
// closing any descriptor of it drops every POSIX lock the process holds
// on it, SQLite's included, after which another SQLite client (the
// sqlite3 shell, a backup) takes itself for the file's last user and
// deletes the WAL under the store, losing acknowledged writes. Watched
// with inotify, which reports every open of the file.
func TestFileWritableDoesNotOpenTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_OPEN); err != nil {
		t.Fatal(err)
	}
	if err := fileWritable(path); err != nil {
		t.Fatalf("a writable file: %v", err)
	}
	buf := make([]byte, 4096)
	if n, _ := unix.Read(fd, buf); n > 0 {
		t.Fatal("fileWritable opened the log")
	}
	if err := fileWritable(filepath.Join(t.TempDir(), "missing.db")); err == nil {
		t.Fatal("a missing file reads as writable")
	}
}

// Writable was the server's own (cmd/ledger) until a program embedding
// the store needed it for its health check: nil for an open store, an
// error once its path no longer names the file or when it is read-only.
func TestWritable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "log.db")
	s, err := Open(ctx, Config{Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Writable(ctx); err != nil {
		t.Fatalf("an open store: %v", err)
	}
	ro, err := OpenReadOnly(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.Writable(ctx); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("a read-only store: %v, want ErrUnavailable", err)
	}
	if err := os.Rename(path, filepath.Join(dir, "moved.db")); err != nil {
		t.Fatal(err)
	}
	if err := s.Writable(ctx); err == nil {
		t.Fatal("a moved log reads as writable")
	}
}
