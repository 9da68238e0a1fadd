//go:build unix

package projections_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/interactionledger/ledger/projections"
)

// TestRebuildWaitsForAnother: a rebuild waits while another holds the
// views file's rebuild lock (another process: a server building its views
// file at start, a second ledger rebuild), then runs. Before, both filled
// and dropped the same "__new" tables at once: beside a server under load
// one or both failed, with "no such table: counts__new" or "read model
// disagrees with the log", and a swap could take the other's half-filled
// tables.
func TestRebuildWaitsForAnother(t *testing.T) {
	ctx := context.Background()
	store := MustStore(t)
	MustGenerate(t, store, 300)
	path := filepath.Join(t.TempDir(), "ledger.views")
	s, err := projections.Open(ctx, projections.Config{Path: path, Kinds: kinds}, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other, err := os.OpenFile(path+".rebuild-lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Rebuild(ctx, store, nil, nil) }()
	select {
	case err := <-done:
		t.Fatalf("the rebuild ran while another held the lock: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the rebuild after the other: %v", err)
	}
	rep, err := s.Verify(ctx, store, "")
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep.Differences)
	}
}
