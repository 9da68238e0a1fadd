package walcheckpoint_test

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/interactionledger/ledger/internal/sqlitedsn"
	"github.com/interactionledger/ledger/internal/walcheckpoint"
	_ "github.com/mattn/go-sqlite3"
)

// openWAL opens a file in WAL mode on one connection that never
// checkpoints by itself, with a table t.
func openWAL(t *testing.T, path string) *sql.DB {
	t.Helper()
	db := openPool(t, path)
	db.SetMaxOpenConns(1)
	for _, q := range []string{`PRAGMA journal_mode = WAL`, walcheckpoint.DisableAuto,
		`CREATE TABLE IF NOT EXISTS t (v BLOB)`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func openPool(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", sqlitedsn.File(path, nil))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// grow commits n rows of 4 KB each, one per transaction: at least n new
// WAL frames.
func grow(t *testing.T, db *sql.DB, n int) {
	t.Helper()
	blob := []byte(strings.Repeat("x", 4000))
	for range n {
		if _, err := db.Exec(`INSERT INTO t VALUES (?)`, blob); err != nil {
			t.Fatal(err)
		}
	}
}

func TestGeneration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.db")
	if _, ok := walcheckpoint.Generation(path + "-wal"); ok {
		t.Fatal("Generation of a missing WAL: ok")
	}
	db := openWAL(t, path)
	grow(t, db, 10)
	g1, ok := walcheckpoint.Generation(path + "-wal")
	if !ok {
		t.Fatal("no generation after 10 commits")
	}
	grow(t, db, 10)
	if g, _ := walcheckpoint.Generation(path + "-wal"); g != g1 {
		t.Fatalf("generation changed without a checkpoint: %x, %x", g1, g)
	}
	if _, err := db.Exec(walcheckpoint.Query); err != nil {
		t.Fatal(err)
	}
	grow(t, db, 1)
	if g, _ := walcheckpoint.Generation(path + "-wal"); g == g1 {
		t.Fatalf("generation %x unchanged by a commit after a complete checkpoint", g)
	}
}

func TestCheckpointerRunsAtItsThreshold(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.db")
	db := openWAL(t, path)
	g1 := generation(t, db, path)
	var observed atomic.Int64
	c := mustOpen(t, path, walcheckpoint.Config{Pages: 100, Finish: onWriter(db),
		OnCheckpoint: func(took time.Duration, err error) {
			if err != nil || took <= 0 {
				t.Errorf("OnCheckpoint(%s, %v)", took, err)
			}
			observed.Add(1)
		}})
	defer c.Close()
	grow(t, db, 500)
	deadline := time.Now().Add(10 * time.Second)
	for c.Runs() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("10 s after 500 commits with a threshold of 100 frames: no checkpoint")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if g := generation(t, db, path); g == g1 {
		t.Fatal("the WAL was not written from its start again after a checkpoint and its finish")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if observed.Load() != c.Runs() {
		t.Fatalf("OnCheckpoint called %d times for %d checkpoints", observed.Load(), c.Runs())
	}
	var rows int
	if err := openPool(t, path).QueryRow(`SELECT count(*) FROM t`).Scan(&rows); err != nil || rows != 502 {
		t.Fatalf("rows after checkpoints: %d, %v; want 502", rows, err)
	}
}

// mustOpen opens a Checkpointer of the file at path.
func mustOpen(t *testing.T, path string, cfg walcheckpoint.Config) *walcheckpoint.Checkpointer {
	t.Helper()
	c, err := walcheckpoint.Open(t.Context(), "sqlite3", path, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCheckpointerNeverCreatesTheFile: the checkpointer's connection opens
// only an existing file (mode=rw): after the file moved, it fails instead
// of creating an empty file where the file was.
func TestCheckpointerNeverCreatesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gone.db")
	if c, err := walcheckpoint.Open(t.Context(), "sqlite3", path, nil, walcheckpoint.Config{}); err == nil {
		c.Close()
		t.Fatal("the checkpointer's connection opened a missing file")
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat %s after the checkpointer's open: %v, want it missing", path, err)
	}
}

// generation commits one row and returns the WAL's generation after it.
func generation(t *testing.T, db *sql.DB, path string) uint64 {
	t.Helper()
	grow(t, db, 1)
	g, ok := walcheckpoint.Generation(path + "-wal")
	if !ok {
		t.Fatal("no WAL header")
	}
	return g
}

func TestCheckpointerWaitsForItsThreshold(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.db")
	db := openWAL(t, path)
	c := mustOpen(t, path, walcheckpoint.Config{Pages: 1000, Finish: onWriter(db)})
	grow(t, db, 200)
	time.Sleep(200 * time.Millisecond) // ten polls
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if c.Runs() != 0 {
		t.Fatalf("200 one-page commits under a threshold of 1000 frames: %d checkpoints", c.Runs())
	}
}

// TestWALRestartsUnderConstantWrites: a writer that never pauses still
// finds its WAL emptied, so SQLite writes it from its start again instead
// of growing the file. Without the finish on the writer's connection, the
// WAL never restarted here (245,000 commits in 20 s).
func TestWALRestartsUnderConstantWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.db")
	db := openWAL(t, path)
	c := mustOpen(t, path, walcheckpoint.Config{Pages: 50, Finish: onWriter(db)})
	defer c.Close()
	last, _ := walcheckpoint.Generation(path + "-wal")
	restarts, commits := 0, 0
	for deadline := time.Now().Add(20 * time.Second); restarts < 3; commits++ {
		if time.Now().After(deadline) {
			t.Fatalf("20 s, %d commits: the WAL restarted %d times (%d checkpoints)", commits, restarts, c.Runs())
		}
		grow(t, db, 1)
		if g, ok := walcheckpoint.Generation(path + "-wal"); ok {
			if g != last {
				restarts++
			}
			last = g
		}
	}
}

// onWriter finishes checkpoints on db, the writer's pool of one connection.
func onWriter(db *sql.DB) walcheckpoint.Finish {
	return func(ctx context.Context) (int64, error) { return walcheckpoint.Run(ctx, db) }
}
