package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/interactionledger/ledger/adapters/storetest"
	"github.com/interactionledger/ledger/domain"
)

// A read that needs a new connection after the log file was deleted names
// the deletion as the cause, like a refused append does.
func TestReadAfterDeleteNamesTheCause(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "log.db")
	s, err := Open(ctx, Config{Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	s.read.SetMaxIdleConns(0) // the next read must open a connection
	stream := domain.StreamID{User: storetest.MustUser(t, "u1"), Target: storetest.MustTarget(t, "article/a1")}
	_, err = s.Snapshot(ctx, stream)
	if !errors.Is(err, domain.ErrUnavailable) || !strings.Contains(err.Error(), "moved or deleted") {
		t.Fatalf("snapshot of a deleted log: %v, want ErrUnavailable naming the deletion", err)
	}
}
