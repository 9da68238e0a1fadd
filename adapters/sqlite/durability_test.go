package sqlite

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/interactionledger/ledger/internal/walcheckpoint"
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

// TestCheckpointSetting: the writer's connection never checkpoints inside
// a commit (wal_autocheckpoint = 0); the store's checkpointer does, every
// walAutocheckpoint pages, on its own connection. The raw baseline's
// connection (benchload.go) is set up the same way, and its rawInserter
// has a checkpointer too, so that its ceiling is measured under the
// store's own settings.
func TestCheckpointSetting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "checkpoint.db")
	s := MustOpen(t, Config{Path: path})
	var pages int
	if err := s.w.conn.QueryRowContext(t.Context(), "PRAGMA wal_autocheckpoint").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if pages != 0 || s.ckpt == nil {
		t.Fatalf("writer: wal_autocheckpoint = %d, checkpointer %v; want 0 and one", pages, s.ckpt)
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
	ri, err := newRawInserter(t.Context(), db, DefaultTargetIndexEvery)
	if err != nil {
		t.Fatal(err)
	}
	defer ri.close()
	if pages != 0 || ri.ckpt == nil {
		t.Fatalf("raw baseline: wal_autocheckpoint = %d, checkpointer %v; want 0 and one", pages, ri.ckpt)
	}
}

// TestWALRestartsUnderAppends: appenders that never pause still find the
// log's WAL emptied by the checkpointer and its finish on the writer's
// connection, so SQLite writes it from its start again rather than growing
// the file; every acknowledged append is in the log afterwards.
func TestWALRestartsUnderAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "restarts.db")
	var observed atomic.Int64
	s := MustOpen(t, Config{Path: path, Synchronous: "NORMAL", checkpointPages: 50,
		OnCheckpoint: func(time.Duration, error) { observed.Add(1) }})
	var acked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for a := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Append(t.Context(), likeReq(t, s, fmt.Sprintf("article/w%d-%d", a, i))); err != nil {
					t.Error(err)
					return
				}
				acked.Add(1)
			}
		})
	}
	restarts, last := 0, uint64(0)
	for deadline := time.Now().Add(30 * time.Second); restarts < 3 && time.Now().Before(deadline); {
		if g, ok := walcheckpoint.Generation(path + "-wal"); ok {
			if g != last && last != 0 {
				restarts++
			}
			last = g
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if restarts < 3 {
		t.Fatalf("30 s of appends (%d): the WAL restarted %d times (%d checkpoints)", acked.Load(), restarts, s.ckpt.Runs())
	}
	if observed.Load() == 0 {
		t.Fatalf("Config.OnCheckpoint not called in %d checkpoints", s.ckpt.Runs())
	}
	var n int64
	if err := s.read.QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil || n != acked.Load() {
		t.Fatalf("%d events in the log (%v), %d appends acknowledged", n, err, acked.Load())
	}
}
