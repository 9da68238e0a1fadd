package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportInterruptedListsItsConflicts: an import interrupted (Ctrl-C)
// after it found a conflict lists the conflicting row as a whole import
// does, not only its count in the summary: the list is read from the
// scratch database after the interrupt.
func TestImportInterruptedListsItsConflicts(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "live.db")
	mustLiveLike(t, db, "u0", "article/q9")
	var rows strings.Builder
	rows.WriteString("id,user_id,action_type,target_type,target_id,is_deleted,created_at,updated_at\n")
	rows.WriteString("1,u0,like,article,q9,0,2020-01-01 00:00:00,2020-01-01 00:00:00\n") // the live pair, first in time
	for i := 2; i <= 10100; i++ {
		fmt.Fprintf(&rows, "%d,u%d,like,article,q9,0,2021-01-01 00:00:00,2021-01-01 00:00:00\n", i, i)
	}
	csvPath := filepath.Join(dir, "old.csv")
	if err := os.WriteFile(csvPath, []byte(rows.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stderr := &cancelOn{logWatch: logWatch{addr: make(chan string, 1)}, msg: "imported 10000/", cancel: cancel}
	var out bytes.Buffer
	err := run(ctx, []string{"import", "legacy", csvPath, "--db", db}, func(string) string { return "" }, &out, stderr)
	if !strings.Contains(out.String(), "1 conflicting") || !strings.Contains(stderr.String(), "old.csv:2: user_id: not imported") {
		t.Fatalf("import interrupted after a conflict: %v\nstdout %s\nstderr %s", err, out.String(), stderr.String())
	}
}
