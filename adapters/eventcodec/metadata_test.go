package eventcodec

import (
	"encoding/json"
	"testing"

	"github.com/interactionledger/ledger/domain"
)

func TestDecodeMetadata(t *testing.T) {
	for _, entries := range []map[string]string{
		{"request_id": "r-1"},
		{"a": "", "b": "x:y,z", "c": "{\"}", "ü": "<&>", "e": "tab\there", "f": "\u2028", "g": "back\\slash"},
		{"k": `"quoted"`, "l": "1", "m": "{}"},
	} {
		m := domain.MustMetadata(entries)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeMetadata(string(b))
		if err != nil || !got.Equal(m) {
			t.Errorf("decode %s: %v, %v; want %v", b, got, err, m)
		}
	}
	for _, bad := range []string{`{"a":1}`, `{"a"}`, `{"a":"b",}`, `["a"]`} {
		if _, err := DecodeMetadata(bad); err == nil {
			t.Errorf("decode %s: no error", bad)
		}
	}
}
