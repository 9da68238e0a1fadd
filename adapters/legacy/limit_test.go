package legacy_test

import (
	"errors"
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
