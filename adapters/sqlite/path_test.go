package sqlite_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
