package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/interactionledger/ledger/internal/testlog"
	"github.com/interactionledger/ledger/projections"
)

// TestBuildStatusSaysWhatFollowsTheBuild: /readyz's status while a node
// builds its views file names what the build does, and after the build's
// last phase it no longer says "building": it said "building the views
// file from the log (done: N of N)" for the seconds the node still took to
// catch up and open the views, so an operator saw a finished build that
// was not ready, and it gave the projections' phase names ("latest: 65536
// of 3000000" counted interactions against events).
func TestBuildStatusSaysWhatFollowsTheBuild(t *testing.T) {
	done := buildStatus(projections.Progress{Projection: "all", Phase: "done", Done: 3_000_000, Total: 3_000_000})
	if strings.Contains(done, "building") || !strings.Contains(done, "catching up") {
		t.Errorf("status once the build is done: %q, want it built and catching up", done)
	}
	for _, phase := range []string{"wait", "read", "latest", "write", "copy", "index", "swap", "done"} {
		s := buildStatus(projections.Progress{Projection: "all", Phase: phase, Done: 65536, Total: 3_000_000})
		if strings.Contains(s, phase+":") {
			t.Errorf("status of phase %s: %q, want it in words", phase, s)
		}
	}
}

// TestServeLogsBuildProgress: a server that builds its views file at
// start logs the build's phases, so the log shows what it does until
// "serving"; it logged nothing between "rebuilding projections" and
// "serving" (tens of seconds for millions of events).
func TestServeLogsBuildProgress(t *testing.T) {
	db := filepath.Join(t.TempDir(), "p.db")
	mustFill(t, db, 50)
	os.Remove(db + ".views")
	s := startServe(t, db, nil)
	logs := s.logs.String()
	for _, phase := range []string{"write", "done"} {
		if !strings.Contains(logs, `"msg":"building the views file","phase":"`+phase+`"`) {
			t.Errorf("the build's phase %s not logged:\n%s", phase, logs)
		}
	}
	s.stop(t)
}

// TestRebuildSaysItWaits: `ledger rebuild` of a views file whose rebuild
// lock another holds says that it waits for that rebuild, in a line of its
// own, and rebuilds once it ends (its progress said "wait 0/0 events").
func TestRebuildSaysItWaits(t *testing.T) {
	db := filepath.Join(t.TempDir(), "w.db")
	mustFill(t, db, 20)
	unlock, err := projections.LockRebuild(t.Context(), db+".views", nil)
	if err != nil {
		t.Fatal(err)
	}
	stderr, done := &testlog.Buffer{}, make(chan error, 1)
	go func() {
		done <- run(t.Context(), []string{"rebuild", "--db", db}, func(string) string { return "" }, io.Discard, stderr)
	}()
	waitFor(t, func() bool { return strings.Contains(stderr.String(), "wait") }, "the rebuild to report its wait")
	unlock()
	if err := <-done; err != nil {
		t.Fatalf("rebuild: %v\n%s", err, stderr)
	}
	out := stderr.String()
	if !strings.Contains(out, "rebuild all: waiting for another rebuild of the views file to end\n") || strings.Contains(out, "0/0") {
		t.Errorf("rebuild's output while it waited:\n%s", out)
	}
}
