package eventcodec

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
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

// EncodeMetadata writes byte for byte what encoding/json writes, on its
// hand-written path (plain entries) and off it (entries to escape).
func TestEncodeMetadataIsEncodingJSON(t *testing.T) {
	const alphabet = "az09_-:/.{} \"\\<>&\t\x7fü\u2028"
	rng := rand.New(rand.NewPCG(1, 2))
	word := func() string {
		r := []rune(alphabet)
		var b strings.Builder
		for range rng.IntN(6) {
			if rng.IntN(4) == 0 {
				b.WriteRune(r[rng.IntN(len(r))])
			} else {
				b.WriteByte("abcxyz019_-"[rng.IntN(11)])
			}
		}
		return b.String()
	}
	plain := 0
	for range 2000 {
		entries := map[string]string{}
		for range 1 + rng.IntN(4) {
			if k := word(); k != "" {
				entries[k] = word()
			}
		}
		m, err := domain.DecodeMetadata(entries)
		if err != nil || m.Len() == 0 {
			continue
		}
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if got := EncodeMetadata(m); got != string(want) {
			t.Fatalf("EncodeMetadata(%v) = %s, encoding/json writes %s", entries, got, want)
		}
		if !strings.ContainsAny(string(want), "\\") {
			plain++
		}
	}
	if plain < 100 {
		t.Fatalf("only %d plain cases: the hand-written path was hardly tested", plain)
	}
}
