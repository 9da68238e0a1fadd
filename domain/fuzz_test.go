package domain_test

import (
	"errors"
	"testing"

	"github.com/interactionledger/ledger/domain"
)

// FuzzParseTarget checks that any input either parses into a target whose
// String round-trips, or fails with a ValidationError; never a panic.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"article/a-1", "post/p:1@x", "/", "a/", "/b", "a/b/c", "ä/b", "a/\x00", "a/" + long(200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := domain.ParseTarget(s)
		if err != nil {
			var ve *domain.ValidationError
			if !errors.As(err, &ve) || tg != (domain.Target{}) {
				t.Fatalf("ParseTarget(%q) = %v, %v", s, tg, err)
			}
			return
		}
		if tg.String() != s {
			t.Fatalf("round trip %q -> %q", s, tg.String())
		}
		if again, err := domain.NewTarget(tg.Type(), tg.ID()); err != nil || again != tg {
			t.Fatalf("NewTarget of a parsed target failed: %v", err)
		}
	})
}

// FuzzParseIDs checks user ids, kinds and states together.
func FuzzParseIDs(f *testing.F) {
	for _, s := range []string{"u42", "like", "collect,like", "", "Like", "u 1", "a,,b", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if u, err := domain.NewUserID(s); err == nil && u.String() != s {
			t.Fatalf("user %q -> %q", s, u)
		} else if err != nil && !errors.Is(err, domain.ErrInvalidInput) {
			t.Fatalf("user %q: %v", s, err)
		}
		if k, err := domain.ParseKind(s); err == nil && k.String() != s {
			t.Fatalf("kind %q -> %q", s, k)
		}
		if st, err := domain.ParseState(s); err == nil {
			again, err := domain.ParseState(st.String())
			if err != nil || again.String() != st.String() {
				t.Fatalf("state %q does not round-trip: %q %v", s, st, err)
			}
		}
		if err := domain.ValidateIdempotencyKey(s); err != nil && !errors.Is(err, domain.ErrInvalidInput) {
			t.Fatalf("key %q: %v", s, err)
		}
	})
}
