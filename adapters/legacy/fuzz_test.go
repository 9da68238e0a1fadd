package legacy_test

import (
	"strings"
	"testing"

	"github.com/interactionledger/ledger/adapters/legacy"
)

// FuzzParseRow feeds one arbitrary data row after a valid header: the
// parser must either plan it or report it with its line, never panic.
func FuzzParseRow(f *testing.F) {
	for _, s := range []string{
		"1,u1,like,article,a1,0,2025-01-01 00:00:00,2025-01-01 00:00:00",
		"1,u1,like,article,a1,1,2025-01-02 00:00:00,2025-01-01 00:00:00",
		"x,u 1,share,Article,,2,not-a-date,",
		"1,u1,like",
		`"1","u1","like","article","a1","0","2025-01-01 00:00:00","2025-01-01 00:00:00"`,
	} {
		f.Add(s)
	}
	header := strings.Join(legacy.Columns, ",") + "\n"
	f.Fuzz(func(t *testing.T, row string) {
		plan, steps, bad, err := parse(t, strings.NewReader(header+row), "legacy")
		if err != nil {
			return // not CSV at all: reported as a file error
		}
		for _, b := range bad {
			if b.Line < 2 || b.Reason == "" {
				t.Fatalf("row error without a line or reason: %+v", b)
			}
		}
		if len(steps) > 2*plan.Rows {
			t.Fatalf("%d steps from %d rows", len(steps), plan.Rows)
		}
	})
}
