package legacy_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/interactionledger/ledger/adapters/legacy"
	"github.com/interactionledger/ledger/domain"
)

// TestParseRefusesAnOverlongRecord: a record longer than MaxRecordBytes (a
// huge field; a file with no line break, as a binary file or /dev/zero,
// which was read into memory whole until the process ran out of it) fails
// the file as bad input, naming the bound, whether it is the header or a
// row, and leaves no plan.
func TestParseRefusesAnOverlongRecord(t *testing.T) {
	const header = "id,user_id,action_type,target_type,target_id,is_deleted,created_at,updated_at\n"
	huge := strings.Repeat("x", 2*legacy.MaxRecordBytes)
	for name, in := range map[string]io.Reader{
		"Header": strings.NewReader(huge),
		"Field": strings.NewReader(header + "1,u1,like,article,a1,0,2024-05-05 18:20:24,2024-05-05 18:20:24\n" +
			"2," + huge + ",like,article,a1,0,2024-05-05 18:20:24,2024-05-05 18:20:24\n"),
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("TMPDIR", t.TempDir())
			plan, err := legacy.Parse(t.Context(), in, domain.MustKindSet("like"), "legacy")
			if err == nil {
				plan.Close()
			}
			if !errors.Is(err, domain.ErrInvalidInput) || !strings.Contains(err.Error(), "longer than 1048576 bytes") {
				t.Fatalf("Parse = %v, want bad input naming the bound", err)
			}
		})
	}
}

// recordOf is a row of exactly n bytes, its line break included (end:
// "\n", or "" for a last line without one), its target_id padded; with
// quoted, the padding is a quoted field of short lines, which ended the
// bound's count at each of them.
func recordOf(n int, end string, quoted bool) string {
	const head, tail = "2,u1,like,article,", ",0,2024-05-05 18:20:24,2024-05-05 18:20:24"
	pad := n - len(head) - len(tail) - len(end)
	if !quoted {
		return head + strings.Repeat("x", pad) + tail + end
	}
	field := strings.Repeat("x\n", (pad-2)/2) + strings.Repeat("x", (pad-2)%2)
	return head + `"` + field + `"` + tail + end
}

// TestParseRecordBound: a record of exactly MaxRecordBytes (its line break
// included) is read, one byte more is refused as bad input naming the
// record's byte offset, whether the record ends with a line break or the
// file, and when its bytes are a quoted field of many short lines. The
// bound was checked only before each read, so a record up to a read's size
// (4 KiB) over it passed, and a quoted field's line breaks started the
// count again, so a record of short lines had no bound at all.
func TestParseRecordBound(t *testing.T) {
	const header = "id,user_id,action_type,target_type,target_id,is_deleted,created_at,updated_at\n"
	first := "1,u1,like,article,a1,0,2024-05-05 18:20:24,2024-05-05 18:20:24\n"
	at := len(header) + len(first)
	t.Setenv("TMPDIR", t.TempDir())
	for _, c := range []struct {
		name   string
		end    string
		quoted bool
		after  string
	}{
		{"LineBreak", "\n", false, first},
		{"EndOfFile", "", false, ""},
		{"QuotedLines", "\n", true, first},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, n := range []int{legacy.MaxRecordBytes, legacy.MaxRecordBytes + 1} {
				in := header + first + recordOf(n, c.end, c.quoted) + c.after
				plan, err := legacy.Parse(t.Context(), strings.NewReader(in), domain.MustKindSet("like"), "legacy")
				if n == legacy.MaxRecordBytes {
					if err != nil {
						t.Fatalf("a record of %d bytes: %v", n, err)
					}
					plan.Close()
					continue
				}
				if err == nil {
					plan.Close()
				}
				want := fmt.Sprintf("the record at byte %d is longer than %d bytes", at, legacy.MaxRecordBytes)
				if !errors.Is(err, domain.ErrInvalidInput) || !strings.Contains(err.Error(), want) {
					t.Fatalf("a record of %d bytes: Parse = %v, want bad input: %s", n, err, want)
				}
			}
		})
	}
}
