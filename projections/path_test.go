package projections_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/interactionledger/ledger/adapters/sqlite"
	"github.com/interactionledger/ledger/projections"
)

// oddDir is a directory name that a DSN built without escaping misreads:
// '#' and '?' end a URI's path, '%' starts an escape, and a space is not
// allowed in a URI.
const oddDir = "a#b ?c=d %41 e"

// TestOddPath: the log, its views file and verify's scratch file land in
// a directory whose name needs escaping, at exactly the paths asked for.
func TestOddPath(t *testing.T) {
	ctx := context.Background()
	parent := t.TempDir()
	dir := filepath.Join(parent, oddDir)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "ledger.db")
	store, err := sqlite.Open(ctx, sqlite.Config{Path: db, Synchronous: "NORMAL"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	MustGenerate(t, store, 300)
	s, err := projections.Open(ctx, projections.Config{Path: projections.ViewsPath(db), Kinds: kinds}, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	applyLive(t, s, store, 100)
	if s.Applied() != 300 {
		t.Fatalf("applied %d, want 300", s.Applied())
	}
	r, err := s.Verify(ctx, store, dir)
	if err != nil || !r.OK() {
		t.Fatalf("verify: %v %+v", err, r.Differences)
	}
	for _, p := range []string{db, projections.ViewsPath(db)} {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			t.Fatalf("%s: %v", p, err)
		}
	}
	if names := dirNames(t, parent); !slices.Equal(names, []string{oddDir}) {
		t.Fatalf("files beside the directory: %q", names)
	}
	for _, n := range dirNames(t, dir) {
		if !strings.HasPrefix(n, "ledger.db") {
			t.Fatalf("stray file %q in %q", n, dir)
		}
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// TestOpenCreatesViewsDir: a views file in a directory that does not exist
// yet opens, as the log's store creates its own directory; SQLite alone
// answered "unable to open database file".
func TestOpenCreatesViewsDir(t *testing.T) {
	ctx := context.Background()
	store := MustStore(t)
	MustGenerate(t, store, 10)
	path := filepath.Join(t.TempDir(), "not", "yet", "ledger.views")
	s, err := projections.Open(ctx, projections.Config{Path: path, Kinds: kinds}, store, nil)
	if err != nil {
		t.Fatalf("open in a missing directory: %v", err)
	}
	defer s.Close()
	if s.Applied() != 10 {
		t.Fatalf("applied %d, want 10", s.Applied())
	}
}
