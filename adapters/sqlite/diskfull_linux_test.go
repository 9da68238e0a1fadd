package sqlite

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/interactionledger/ledger/adapters/storetest"
	"github.com/interactionledger/ledger/internal/faultfs"
	"github.com/interactionledger/ledger/internal/testlog"
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
	logs := &testlog.Buffer{}
	s, err := Open(t.Context(), Config{Path: filepath.Join(dir, "ledger.db")}, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var filler string
	storetest.CheckFailureRunSpansNoOps(t, s, logs, func() { filler = faultfs.Fill(t, dir) }, func() {
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
	})
}
