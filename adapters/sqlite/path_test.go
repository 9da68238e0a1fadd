package sqlite_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/sqlite"
	"github.com/interactionledger/ledger/adapters/storetest"
	"github.com/interactionledger/ledger/domain"
)

// TestMovedFileRefusesWrites: while the store's path no longer names the
// file it opened, appends fail with ErrUnavailable and nothing is written;
// when the file is back, appends work again.
func TestMovedFileRefusesWrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "log.db")
	store, err := sqlite.Open(ctx, sqlite.Config{Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	l := domain.NewLedger(store, domain.MustKindSet("like", "collect"), domain.LedgerConfig{}, nil)
	like := func(user string) error {
		_, err := l.Set(ctx, domain.SetRequest{User: storetest.MustUser(t, user),
			Target: storetest.MustTarget(t, "article/a1"), Kind: storetest.MustKind(t, "like"), On: true})
		return err
	}
	if err := like("u1"); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(dir, "elsewhere.db")
	if err := os.Rename(path, moved); err != nil {
		t.Fatal(err)
	}
	err = like("u2")
	var reason interface{ Reason() string }
	if !errors.Is(err, domain.ErrUnavailable) || !errors.As(err, &reason) || !strings.Contains(reason.Reason(), "moved or deleted") {
		t.Fatalf("append while the file is moved: %v, want ErrUnavailable saying why", err)
	}
	if n, _ := store.LastPosition(ctx); n != 1 {
		t.Fatalf("head %d after a refused append, want 1", n)
	}
	if err := os.Rename(moved, path); err != nil {
		t.Fatal(err)
	}
	if err := like("u3"); err != nil {
		t.Fatalf("append after the file is back: %v", err)
	}
}

// The WAL deleted under a writing store: SQLite would go on writing to the
// WAL it has open, which no restart reads, and every write since the last
// checkpoint was lost. The store copies the open WAL's frames into the
// database file and refuses writes, saying why; after a restart every
// acknowledged write is there.
func TestDeletedWALRefusesWrites(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "log.db")
	store, err := sqlite.Open(ctx, sqlite.Config{Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := domain.NewLedger(store, domain.MustKindSet("like", "collect"), domain.LedgerConfig{}, nil)
	like := func(user string) error {
		_, err := l.Set(ctx, domain.SetRequest{User: storetest.MustUser(t, user),
			Target: storetest.MustTarget(t, "article/a1"), Kind: storetest.MustKind(t, "like"), On: true})
		return err
	}
	for _, u := range []string{"u1", "u2", "u3"} {
		if err := like(u); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(path + "-wal"); err != nil {
		t.Fatal(err)
	}
	// Saved without waiting for a write: a crash before the next write
	// would otherwise lose them. A reader of the file alone finds them.
	deadline := time.Now().Add(10 * time.Second)
	for n := 0; n != 3; {
		if time.Now().After(deadline) {
			t.Fatalf("the file alone holds %d events 10 s after the WAL was deleted, want 3", n)
		}
		time.Sleep(50 * time.Millisecond)
		n = eventsInFile(t, path)
	}
	for range 2 { // refused, saying why
		err := like("u4")
		var reason interface{ Reason() string }
		if !errors.Is(err, domain.ErrUnavailable) || !errors.As(err, &reason) || !strings.Contains(reason.Reason(), "WAL file was deleted") {
			t.Fatalf("append after the WAL was deleted: %v, want ErrUnavailable saying why", err)
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := sqlite.OpenReadOnly(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if got := storetest.MustReadAll(t, again, domain.EventFilter{}); len(got) != 3 {
		t.Fatalf("after a restart the log holds %d events, want the 3 acknowledged", len(got))
	}
}

// eventsInFile counts the events a new read-only store on path finds.
func eventsInFile(t *testing.T, path string) int {
	t.Helper()
	r, err := sqlite.OpenReadOnly(context.Background(), path, nil)
	if err != nil {
		return 0 // no schema yet in the file itself
	}
	defer r.Close()
	n := 0
	for _, err := range r.ReadEvents(context.Background(), domain.EventFilter{}) {
		if err != nil {
			return 0
		}
		n++
	}
	return n
}

// TestReadOnlyStoreSeesItsFileReplaced: a read-only store's connections go
// on reading the file they opened after another file takes its path (a
// restore, a log made anew). Its head read and its reads then fail with
// ErrLogReplaced, so that a tailer (the relay) stops instead of waiting for
// ever on a log nobody writes, or reading the new file's events after the
// old one's.
func TestReadOnlyStoreSeesItsFileReplaced(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "log.db")
	for _, p := range []string{path, filepath.Join(dir, "other.db")} {
		s, err := sqlite.Open(ctx, sqlite.Config{Path: p}, nil)
		if err != nil {
			t.Fatal(err)
		}
		l := domain.NewLedger(s, domain.MustKindSet("like"), domain.LedgerConfig{}, nil)
		if _, err := l.Set(ctx, domain.SetRequest{User: storetest.MustUser(t, "u1"),
			Target: storetest.MustTarget(t, "article/a1"), Kind: storetest.MustKind(t, "like"), On: true}); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	r, err := sqlite.OpenReadOnly(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.LastPosition(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "other.db"), path); err != nil {
		t.Fatal(err)
	}
	if _, err := r.LastPosition(ctx); !errors.Is(err, domain.ErrLogReplaced) {
		t.Fatalf("head read after the file was replaced: %v, want ErrLogReplaced", err)
	}
	if _, err := domain.AppendEvents(nil, r.ReadEvents(ctx, domain.EventFilter{})); !errors.Is(err, domain.ErrLogReplaced) {
		t.Fatalf("read after the file was replaced: %v, want ErrLogReplaced", err)
	}
}
