package projections

import (
	"errors"
	"testing"

	"github.com/interactionledger/ledger/domain"
)

// FuzzParseCursor feeds parseCursor arbitrary strings: it must never panic,
// must reject anything it did not issue with a cursor ValidationError, and
// must accept exactly the cursors makeCursor issues for the same scope.
func FuzzParseCursor(f *testing.F) {
	for _, seed := range []string{"", makeCursor("actors:article/a-1:like", 1), makeCursor("x", 1<<62), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "!!", "a=b", "%00"} {
		f.Add("actors:article/a-1:like", seed)
	}
	f.Fuzz(func(t *testing.T, scope, c string) {
		pos, err := parseCursor(scope, c)
		if err != nil {
			var ve *domain.ValidationError
			if !errors.As(err, &ve) || ve.Field != "cursor" {
				t.Fatalf("parseCursor(%q) = %v, want a cursor ValidationError", c, err)
			}
			return
		}
		if c == "" {
			return
		}
		if pos <= 0 {
			t.Fatalf("parseCursor(%q) accepted position %d", c, pos)
		}
		if again := makeCursor(scope, pos); again != c {
			t.Fatalf("parseCursor accepted %q, which was not issued (issued form %q)", c, again)
		}
		if _, err := parseCursor(scope+"x", c); err == nil {
			t.Fatalf("cursor %q of scope %q was accepted for another scope", c, scope)
		}
	})
}

// TestCursorRoundTrip: every issued cursor parses back to its position.
func TestCursorRoundTrip(t *testing.T) {
	for _, pos := range []int64{1, 2, 1 << 40, 1<<63 - 1} {
		if got, err := parseCursor("sc", makeCursor("sc", pos)); err != nil || got != pos {
			t.Fatalf("round trip %d: %d, %v", pos, got, err)
		}
	}
}
