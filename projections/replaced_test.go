package projections_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/interactionledger/ledger/projections"
)

// TestViewsFileReplaced: a views file set aside (or deleted) and another
// built at its path under an open set. The set's read pool opens
// connections by path as it needs them, so its reads mixed the two files:
// counts from the new one, applies to the old. Its reads and readiness
// must say instead that the file is gone.
func TestViewsFileReplaced(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ledger.db.views")
	s, err := projections.Open(t.Context(), projections.Config{Path: path, Kinds: kinds, MemoryRows: -1}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l := newEventLog(t)
	l.add("u1", "article/a1", mustKind("like"), true)
	applyAll(t, s, l.events)
	a1 := mustTarget(t, "article/a1")
	if v, err := s.Target(t.Context(), a1, nil); err != nil || v.Counts["like"] != 1 {
		t.Fatalf("before: %v %v", v, err)
	}
	if err := s.Stopped(); err != nil {
		t.Fatalf("Stopped before the file was replaced: %v", err)
	}
	for _, sfx := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(path+sfx, path+".aside"+sfx); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	other := MustOpen(t, path)
	other.Close()
	time.Sleep(projections.RecheckEvery) // reads check the path again after it
	v, err := s.Target(t.Context(), a1, nil)
	var r interface{ Reason() string }
	if !errors.Is(err, projections.ErrUnreadable) || !errors.As(err, &r) || !strings.Contains(r.Reason(), "no longer names") {
		t.Errorf("a read after the file was replaced: %+v, %v, want ErrUnreadable whose reason names the file replaced", v, err)
	}
	if err := s.Err(); !errors.Is(err, projections.ErrFailed) {
		t.Errorf("Err after the file was replaced: %v, want ErrFailed (not ready)", err)
	}
	var sr interface{ Reason() string }
	if stopped := s.Stopped(); !errors.As(stopped, &sr) || r == nil || sr.Reason() != r.Reason() || !errors.Is(stopped, projections.ErrUnreadable) {
		t.Errorf("Stopped after the file was replaced: %v, want the error reads answer (%v)", stopped, err)
	}
}
