package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/interactionledger/ledger/adapters/storetest"
	"github.com/interactionledger/ledger/domain"
)

// likeMany appends n likes by n users of one target.
func likeMany(t *testing.T, s *EventStore, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		storetest.MustDecide(t, s, domain.DecideRequest{
			Command: storetest.Command(t, storetest.MustStream(t, fmt.Sprintf("u%d", i), "article/a1"), "like", true)})
	}
}

// TestBackupIsOneSnapshot: a backup taken while another connection
// commits copies the log as it stood when the backup began, whole, and
// reads it back. Commits land between its steps here; without the read
// transaction held across the steps, SQLite's backup starts again after
// each and copies the later events, or never ends under a steady writer.
func TestBackupIsOneSnapshot(t *testing.T) {
	defer func(n int) { backupPages = n }(backupPages)
	backupPages = 2
	dir := t.TempDir()
	from, to := filepath.Join(dir, "ledger.db"), filepath.Join(dir, "copy.db")
	s := MustOpen(t, Config{Path: from})
	likeMany(t, s, 0, 300)
	before := storetest.MustReadAll(t, s, domain.EventFilter{})
	steps, written := 0, 300
	res, err := Backup(t.Context(), from, to, func(done, total int) {
		if steps++; steps <= 5 {
			likeMany(t, s, written, 20) // commits of another connection mid-copy
			written += 20
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if steps < 5 {
		t.Fatalf("%d steps: the log is too small for commits to land between them", steps)
	}
	if res.Head != 300 || res.LastID != before[299].ID.String() || res.LogID != s.LogID() || res.Schema == 0 {
		t.Fatalf("backup result %+v, want head 300, last id %s, log %s", res, before[299].ID, s.LogID())
	}
	c, err := OpenReadOnly(t.Context(), to, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := storetest.MustReadAll(t, c, domain.EventFilter{})
	if len(got) != len(before) {
		t.Fatalf("the copy holds %d events, the log held %d when the backup began", len(got), len(before))
	}
	for i := range got {
		if got[i].ID != before[i].ID || got[i].Position != before[i].Position {
			t.Fatalf("event %d: copy %v at %d, log %v at %d", i, got[i].ID, got[i].Position, before[i].ID, before[i].Position)
		}
	}
	if c.LogID() != s.LogID() {
		t.Fatalf("the copy is log %s, the source %s", c.LogID(), s.LogID())
	}
}

// TestBackupOfACopyIsWritable: the copy is a log a store opens and goes
// on from: the next append takes the position after the copy's head.
func TestBackupOfACopyIsWritable(t *testing.T) {
	dir := t.TempDir()
	from, to := filepath.Join(dir, "ledger.db"), filepath.Join(dir, "copy.db")
	s := MustOpen(t, Config{Path: from})
	likeMany(t, s, 0, 10)
	if _, err := Backup(t.Context(), from, to, nil); err != nil {
		t.Fatal(err)
	}
	c := MustOpen(t, Config{Path: to})
	likeMany(t, c, 10, 1)
	all := storetest.MustReadAll(t, c, domain.EventFilter{})
	if n := len(all); n != 11 || all[n-1].Position != 11 {
		t.Fatalf("the copy after one append holds %d events, last at %d; want 11 at 11", n, all[n-1].Position)
	}
}

func TestBackupRefusesAFileWithoutALog(t *testing.T) {
	dir := t.TempDir()
	from := filepath.Join(dir, "other.db")
	db, err := sql.Open(driverName, "file:"+from)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE counts (target TEXT)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Backup(t.Context(), from, filepath.Join(dir, "copy.db"), nil)
	if !errors.Is(err, domain.ErrInvalidInput) {
		t.Fatalf("backup of a file without an events table: %v, want domain.ErrInvalidInput", err)
	}
}

func TestBackupCancelled(t *testing.T) {
	defer func(n int) { backupPages = n }(backupPages)
	backupPages = 1
	dir := t.TempDir()
	from := filepath.Join(dir, "ledger.db")
	likeMany(t, MustOpen(t, Config{Path: from}), 0, 50)
	ctx, cancel := context.WithCancel(t.Context())
	steps := 0
	_, err := Backup(ctx, from, filepath.Join(dir, "copy.db"), func(done, total int) {
		steps++
		cancel()
	})
	if !errors.Is(err, context.Canceled) || steps != 1 {
		t.Fatalf("backup cancelled after its first step: %v after %d steps", err, steps)
	}
}
