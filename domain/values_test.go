package domain_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/interactionledger/ledger/adapters/storetest"
	"github.com/interactionledger/ledger/domain"
)

var (
	mustUser   = storetest.MustUser
	mustTarget = storetest.MustTarget
	mustKind   = storetest.MustKind
)

func TestParseKind(t *testing.T) {
	for _, ok := range []string{"like", "collect", "a", "follow_2", "a" + strings.Repeat("b", 31)} {
		if _, err := domain.ParseKind(ok); err != nil {
			t.Errorf("ParseKind(%q) = %v, want ok", ok, err)
		}
	}
	for _, bad := range []string{"", "Like", "1like", "li-ke", "like ", "a" + strings.Repeat("b", 32), "lïke"} {
		_, err := domain.ParseKind(bad)
		var ve *domain.ValidationError
		if !errors.As(err, &ve) || ve.Field != "kind" || !errors.Is(err, domain.ErrInvalidInput) {
			t.Errorf("ParseKind(%q) = %v, want a kind ValidationError", bad, err)
		}
	}
}

func TestKindSet(t *testing.T) {
	set := domain.MustKindSet("like", "collect")
	if k, err := set.Parse("collect"); err != nil || k.String() != "collect" {
		t.Fatalf("Parse(collect) = %v, %v", k, err)
	}
	if _, err := set.Parse("follow"); !errors.Is(err, domain.ErrUnknownKind) || errors.Is(err, domain.ErrInvalidInput) {
		t.Errorf("Parse(follow) = %v, want ErrUnknownKind only", err)
	}
	if _, err := set.Parse("Follow"); !errors.Is(err, domain.ErrInvalidInput) {
		t.Errorf("Parse(Follow) = %v, want ErrInvalidInput", err)
	}
	if got := strings.Join(set.Names(), ","); got != "like,collect" {
		t.Errorf("Names = %s, want configuration order", got)
	}
	for _, bad := range [][]string{nil, {"like", "like"}, {"like", "BAD"}} {
		if _, err := domain.NewKindSet(bad); !errors.Is(err, domain.ErrInvalidInput) {
			t.Errorf("NewKindSet(%q) = %v, want ErrInvalidInput", bad, err)
		}
	}
}

func TestTargetAndUser(t *testing.T) {
	tg, err := domain.ParseTarget("article/a-1")
	if err != nil || tg.Type() != "article" || tg.ID() != "a-1" || tg.String() != "article/a-1" {
		t.Fatalf("ParseTarget = %v %v", tg, err)
	}
	bad := map[string]string{
		"article":              "target",
		"/a":                   "target_type",
		"Article/a":            "target_type",
		"article/":             "target_id",
		"article/a b":          "target_id",
		"article/a/b":          "target_id",
		"article/" + long(129): "target_id",
		"article/%2e":          "target_id",
	}
	for in, field := range bad {
		_, err := domain.ParseTarget(in)
		var ve *domain.ValidationError
		if !errors.As(err, &ve) || ve.Field != field {
			t.Errorf("ParseTarget(%q) = %v, want field %s", in, err, field)
		}
	}
	if _, err := domain.NewUserID("u.42:x@y-z_"); err != nil {
		t.Errorf("every punctuation mark of the user form must pass: %v", err)
	}
	if u, err := domain.NewUserID(long(128)); err != nil || u.IsZero() {
		t.Errorf("128-char user = %v, %v", u, err)
	}
	for _, bad := range []string{"", long(129), "u 1", "u/1", "ü"} {
		if _, err := domain.NewUserID(bad); !errors.Is(err, domain.ErrInvalidInput) {
			t.Errorf("NewUserID(%q) = %v, want ErrInvalidInput", bad, err)
		}
	}
	if !(domain.Target{}).IsZero() || !(domain.UserID{}).IsZero() || !(domain.Kind{}).IsZero() {
		t.Error("zero values must be recognisably invalid")
	}
}

func TestStreamIDIsUnambiguous(t *testing.T) {
	a := domain.StreamID{User: mustUser(t, "b"), Target: mustTarget(t, "x/a")}
	b := domain.StreamID{User: mustUser(t, "a"), Target: mustTarget(t, "x/b")}
	if a.String() == b.String() {
		t.Fatalf("two streams share the name %s", a)
	}
	if got := a.String(); got != "x/a/b" {
		t.Errorf("String = %s", got)
	}
}

func TestNewMetadata(t *testing.T) {
	full := map[string]string{}
	for i := range domain.MaxMetadataEntries {
		full[string(rune('a'+i))] = long(domain.MaxMetadataValueLen)
	}
	full[long(domain.MaxMetadataKeyLen)] = "v"
	delete(full, "a")
	t.Run("OK", func(t *testing.T) {
		m, err := domain.NewMetadata(full)
		if err != nil || m.Len() != domain.MaxMetadataEntries {
			t.Fatalf("%d entries at the limits: %v (len %d)", len(full), err, m.Len())
		}
		full["b"] = "changed after"
		if v, _ := m.Get("b"); v == "changed after" {
			t.Fatal("the Metadata shares the caller's map")
		}
	})
	tooMany := map[string]string{}
	for i := range domain.MaxMetadataEntries + 1 {
		tooMany[string(rune('a'+i))] = "v"
	}
	for name, m := range map[string]map[string]string{
		"too many":        tooMany,
		"empty key":       {"": "v"},
		"long key":        {long(domain.MaxMetadataKeyLen + 1): "v"},
		"long value":      {"k": long(domain.MaxMetadataValueLen + 1)},
		"bad utf8":        {"k": "\xff"},
		"request_id":      {domain.MetaRequestID: "r"},
		"idempotency_key": {domain.MetaIdempotencyKey: "k"},
	} {
		_, err := domain.NewMetadata(m)
		var v *domain.ValidationError
		if !errors.As(err, &v) || v.Field != "metadata" {
			t.Errorf("%s: %v, want a *ValidationError of metadata", name, err)
		}
	}
}

// TestDecodeMetadata: stored metadata holds the reserved keys on top of a
// caller's 16 entries.
func TestDecodeMetadata(t *testing.T) {
	stored := map[string]string{domain.MetaRequestID: "r", domain.MetaIdempotencyKey: "k"}
	for i := range domain.MaxMetadataEntries {
		stored[string(rune('a'+i))] = "v"
	}
	m, err := domain.DecodeMetadata(stored)
	if err != nil || m.Len() != len(stored) {
		t.Fatalf("decode %d stored entries: %v", len(stored), err)
	}
	stored["one-more"] = "v"
	if _, err := domain.DecodeMetadata(stored); !errors.Is(err, domain.ErrInvalidInput) {
		t.Fatalf("decode %d entries: %v, want ErrInvalidInput", len(stored), err)
	}
	var keys []string
	for k := range m.All() {
		keys = append(keys, k)
	}
	if !slices.IsSorted(keys) || len(keys) != m.Len() {
		t.Fatalf("All yields %v, want every key in order", keys)
	}
}

func TestValidateIdempotencyKey(t *testing.T) {
	for _, ok := range []string{"", "k", "abc-123_XYZ~!", long(128)} {
		if err := domain.ValidateIdempotencyKey(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{long(129), "a b", "tab\t", "é", "nul\x00"} {
		if err := domain.ValidateIdempotencyKey(bad); !errors.Is(err, domain.ErrInvalidInput) {
			t.Errorf("%q: %v, want ErrInvalidInput", bad, err)
		}
	}
}

func long(n int) string { return strings.Repeat("x", n) }

func TestKindSetMaps(t *testing.T) {
	set := domain.MustKindSet("like", "collect", "follow")
	counts := set.Counts(map[string]int64{"like": 3, "unknown": 9})
	if len(counts) != 3 || counts["like"] != 3 || counts["collect"] != 0 || counts["follow"] != 0 {
		t.Fatalf("Counts = %v, want every configured kind and no other", counts)
	}
	like := domain.MustKindSet("like").Kinds()[0]
	flags := set.Flags(func(k domain.Kind) bool { return k == like })
	if len(flags) != 3 || !flags["like"] || flags["collect"] || flags["follow"] {
		t.Fatalf("Flags = %v, want like alone on, every configured kind present", flags)
	}
}
