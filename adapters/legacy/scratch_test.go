package legacy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/interactionledger/ledger/adapters/legacy"
)

// TestParseLeavesNoScratchBehind: a plan's scratch database is a file
// under os.TempDir() while the plan is open; it is gone after Close, after
// a file that fails half-way and after ctx ends during the read.
func TestParseLeavesNoScratchBehind(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	ctx := context.Background()
	rows := manyRows(5000)
	plan, err := legacy.Parse(ctx, strings.NewReader(rows), kinds, "legacy")
	if err != nil {
		t.Fatal(err)
	}
	if n := entries(t, dir); n != 1 {
		t.Errorf("%d entries in the temporary directory while the plan is open, want its scratch directory", n)
	}
	if err := plan.Close(); err != nil {
		t.Fatal(err)
	}
	if n := entries(t, dir); n != 0 {
		t.Errorf("%d entries left after Close", n)
	}
	if _, err := legacy.Parse(ctx, strings.NewReader(rows+"9999999,\"u1\n"), kinds, "legacy"); err == nil {
		t.Fatal("broken quoting on the last line: no error")
	}
	if n := entries(t, dir); n != 0 {
		t.Errorf("%d entries left after a file error", n)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &cancelAfter{r: strings.NewReader(rows), n: len(rows) / 2, cancel: cancel}
	if _, err := legacy.Parse(cctx, r, kinds, "legacy"); !errors.Is(err, context.Canceled) {
		t.Fatalf("ctx canceled half-way: %v, want context.Canceled", err)
	}
	if n := entries(t, dir); n != 0 {
		t.Errorf("%d entries left after ctx ended", n)
	}
}

// manyRows is a file of n good rows, each of a pair of its own.
func manyRows(n int) string {
	var b strings.Builder
	b.WriteString(strings.Join(legacy.Columns, ",") + "\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%d,u%d,like,article,a1,1,2025-01-01 00:00:00,2025-01-02 00:00:00\n", i, i)
	}
	return b.String()
}

func entries(t *testing.T, dir string) int {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// cancelAfter reads r and calls cancel once n bytes are read.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	k, err := c.r.Read(p[:min(len(p), 512)])
	if c.n -= k; c.n <= 0 {
		c.cancel()
	}
	return k, err
}
