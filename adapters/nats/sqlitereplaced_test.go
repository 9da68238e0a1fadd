package nats_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/nats/natstest"
	"github.com/interactionledger/ledger/adapters/sqlite"
	"github.com/interactionledger/ledger/domain"
)

// TestRelayStopsWhenTheSQLiteFileIsReplaced: a SQLite log file deleted and
// made anew, or replaced by another log's file, under a running relay is
// another log. The relay's connections would go on reading the old file for
// ever; it must stop with ErrLogReplaced, the stream holding only the old
// log's events.
func TestRelayStopsWhenTheSQLiteFileIsReplaced(t *testing.T) {
	url := natstest.MustURL(t)
	js := natstest.MustJetStream(t, url)
	cases := map[string]func(t *testing.T, path string){
		"DeletedAndMadeAnew": func(t *testing.T, path string) {
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				os.Remove(p)
			}
			writeSQLite(t, path, 40, "new")
		},
		"RenamedOver": func(t *testing.T, path string) {
			other := filepath.Join(t.TempDir(), "other.db")
			writeSQLite(t, other, 40, "new")
			if err := os.Rename(other, path); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, replace := range cases {
		t.Run(name, func(t *testing.T) {
			n := natstest.UniqueNames(t, url)
			path := filepath.Join(t.TempDir(), "log.db")
			old := writeSQLite(t, path, 20, "old")
			ro, err := sqlite.OpenReadOnly(context.Background(), path, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Close()
			oldLog := ro.LogID()
			run := startRelay(t, ro, testConfig(url, n), nil)
			natstest.WaitHolds(t, js, n.Stream, len(old))
			replace(t, path)
			select {
			case err := <-run.done:
				run.done <- err
				if !errors.Is(err, domain.ErrLogReplaced) {
					t.Fatalf("Run: %v, want ErrLogReplaced", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the relay still runs 10s after its log file was replaced")
			}
			natstest.CheckIsLog(t, js, n, oldLog, old)
		})
	}
}

// writeSQLite writes about n events into a log file at path, closes it and
// returns its events.
func writeSQLite(t *testing.T, path string, n int, seed string) []domain.Event {
	t.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Config{Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	write(t, s, n, seed)
	return logEvents(t, s)
}
