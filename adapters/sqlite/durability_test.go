package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"
)

// TestDurableByDefault: a store opened with the zero Config writes with
// synchronous=FULL (2), the setting under which an acknowledged append
// survives a power loss, not only a process crash.
func TestDurableByDefault(t *testing.T) {
	path := filepath.Join(t.TempDir(), "durable.db")
	s := MustOpen(t, Config{Path: path})
	db, err := sql.Open("sqlite3", s.dsn(false))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var level int
	if err := db.QueryRow("PRAGMA synchronous").Scan(&level); err != nil {
		t.Fatal(err)
	}
	if level != 2 {
		t.Fatalf("PRAGMA synchronous = %d on the write connection, want 2 (FULL)", level)
	}
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode %q (%v), want wal", mode, err)
	}
}

// TestCheckpointSetting: the writer's connection checkpoints the WAL every
// walAutocheckpoint pages, not at SQLite's default, and the raw baseline's
// connection (benchload.go) has the same setting, so that its ceiling is
// measured under the store's own settings.
func TestCheckpointSetting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "checkpoint.db")
	s := MustOpen(t, Config{Path: path})
	var pages int
	if err := s.w.conn.QueryRowContext(t.Context(), "PRAGMA wal_autocheckpoint").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if pages != walAutocheckpoint {
		t.Fatalf("writer: wal_autocheckpoint = %d, want %d", pages, walAutocheckpoint)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := durableDB(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow("PRAGMA wal_autocheckpoint").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if pages != walAutocheckpoint {
		t.Fatalf("raw baseline: wal_autocheckpoint = %d, want %d", pages, walAutocheckpoint)
	}
}
