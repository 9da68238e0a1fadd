package sqlite

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/interactionledger/ledger/adapters/storetest"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/faultfs"
)

// TestFullDiskFailuresNotEndedByNoOps: on a full disk a decided command
// that changes nothing still commits (its transaction writes no page). Such
// a commit logged "group commit works again" while the disk was still
// full, and the next failed write was logged as a new run's first: one
// error line per failure, and a false recovery in between. The run of
// failures now goes on through them, logged once, and ends at the first
// commit that writes an event.
func TestFullDiskFailuresNotEndedByNoOps(t *testing.T) {
	dir := faultfs.Mount(t, "4m", false)
	logs := &syncBuffer{}
	s, err := Open(t.Context(), Config{Path: filepath.Join(dir, "ledger.db")}, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	liked := storetest.MustStream(t, "alice", "article/a1")
	like := func(st domain.StreamID) (domain.Outcome, error) {
		return s.Decide(t.Context(), domain.DecideRequest{Command: storetest.Command(t, st, "like", true)})
	}
	if _, err := like(liked); err != nil {
		t.Fatal(err)
	}
	filler := faultfs.Fill(t, dir)
	for i := range 3 {
		if _, err := like(storetest.MustStream(t, fmt.Sprint("u", i), "article/a1")); !errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("a write on the full disk: %v, want ErrUnavailable", err)
		}
		if out, err := like(liked); err != nil || out.Changed {
			t.Fatalf("a like of a liked stream on the full disk: %+v, %v; want no change", out, err)
		}
	}
	if n := strings.Count(logs.String(), `msg="group commit failed"`); n != 1 || strings.Contains(logs.String(), "works again") {
		t.Fatalf("3 failed writes between no-ops logged %d runs of failures:\n%s", n, logs)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if _, err := like(storetest.MustStream(t, "bob", "article/a1")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `msg="group commit works again" failed_in_all=3`) {
		t.Fatalf("the write after space was freed did not end the run of 3 failures:\n%s", logs)
	}
}

// syncBuffer is a log sink shared by the writer and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
