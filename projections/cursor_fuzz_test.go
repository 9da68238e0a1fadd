package projections

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/interactionledger/ledger/domain"
)

// FuzzParseCursor feeds parseCursor arbitrary strings: it must never panic,
// must reject anything it did not issue with a cursor ValidationError, and
// must accept exactly the cursors makeCursor issues for the same scope.
func FuzzParseCursor(f *testing.F) {
	for _, seed := range []string{"", makeCursor("actors:article/a-1:like", 1, 3), makeCursor("x", 1<<62, 1<<62), makeCursorV2("actors:article/a-1:like", 2),
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "!!", "a=b", "%00"} {
		f.Add("actors:article/a-1:like", seed)
	}
	f.Fuzz(func(t *testing.T, scope, c string) {
		pos, at, err := parseCursor(scope, c)
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
		if pos <= 0 || at < 0 {
			t.Fatalf("parseCursor(%q) accepted position %d read at %d", c, pos, at)
		}
		if again, v2 := makeCursor(scope, pos, at), makeCursorV2(scope, pos); again != c && (at != 0 || v2 != c) {
			t.Fatalf("parseCursor accepted %q, which was not issued (issued forms %q, %q)", c, again, v2)
		}
		if _, _, err := parseCursor(scope+"x", c); err == nil {
			t.Fatalf("cursor %q of scope %q was accepted for another scope", c, scope)
		}
	})
}

// TestCursorRoundTrip: every issued cursor parses back to its position
// and the position its page was read at; a cursor of the build before,
// which holds the position alone, to its position, read at 0.
func TestCursorRoundTrip(t *testing.T) {
	for _, pos := range []int64{1, 2, 1 << 40, 1<<63 - 1} {
		for _, at := range []int64{0, pos, 1<<63 - 1} {
			if got, gotAt, err := parseCursor("sc", makeCursor("sc", pos, at)); err != nil || got != pos || gotAt != at {
				t.Fatalf("round trip %d at %d: %d at %d, %v", pos, at, got, gotAt, err)
			}
		}
		if got, at, err := parseCursor("sc", makeCursorV2("sc", pos)); err != nil || got != pos || at != 0 {
			t.Fatalf("cursor of the build before, %d: %d at %d, %v", pos, got, at, err)
		}
	}
}

// makeCursorV2 makes a cursor as the build before this one did: the
// position alone under its checksum.
func makeCursorV2(scope string, pos int64) string {
	buf := binary.BigEndian.AppendUint64(nil, uint64(pos))
	return base64.RawURLEncoding.EncodeToString(append(buf, cursorSum("ledger cursor v2\x00", scope, buf)...))
}
