package failurelog_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/interactionledger/ledger/internal/failurelog"
)

// A run of failures is logged once at its start, then at most every
// failurelog.Every, and its end once; not once per failure.
func TestLog(t *testing.T) {
	var buf bytes.Buffer
	f := &failurelog.Log{Logger: slog.New(slog.NewTextHandler(&buf, nil)), What: "group commit", Level: slog.LevelError}
	for range 1000 {
		f.Failed(errors.New("disk full"), "appends", 3)
	}
	f.Succeeded()
	f.Succeeded()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `level=ERROR msg="group commit failed" appends=3 err="disk full"`) ||
		!strings.Contains(lines[1], `msg="group commit works again" failed_in_all=1000`) {
		t.Fatalf("logged %d lines:\n%s", len(lines), buf.String())
	}
}
