package domain_test

import (
	"errors"
	"regexp"
	"slices"
	"strings"
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

// The forms docs/api.md documents, written here apart from the domain's
// byte tests: the fuzz targets check the code against them.
var (
	docUser = regexp.MustCompile(`^[A-Za-z0-9._:@-]{1,128}$`)
	docKind = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
)

// FuzzParseIDs checks user ids, kinds, states and idempotency keys
// against their documented forms: an input is accepted exactly when the
// documented form (docUser, docKind, a comma-separated list of kinds,
// 1..128 visible ASCII characters) says so; what is accepted round-trips
// (String gives it back, a state's String parses to the same state, whose
// kinds are the input's); what is refused is domain.ErrInvalidInput.
func FuzzParseIDs(f *testing.F) {
	for _, s := range []string{"u42", "like", "collect,like", "", "Like", "u 1", "a,,b", "\xff", "a@b:c.d-e_F9",
		"1like", "like,like", "k" + long(31), "k" + long(32), "u" + long(127), "u" + long(128), "~", "a\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := domain.NewUserID(s)
		checkForm(t, "user", s, docUser.MatchString(s), err, u.String)
		k, err := domain.ParseKind(s)
		checkForm(t, "kind", s, docKind.MatchString(s), err, k.String)
		checkState(t, s)
		err = domain.ValidateIdempotencyKey(s)
		checkForm(t, "idempotency key", s, len(s) <= 128 && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x21 || r > 0x7e }),
			err, func() string { return s })
	})
}

// checkForm fails unless s was accepted exactly when want says, round-trips
// through str when it was, and was refused as bad input when it was not.
func checkForm(t *testing.T, what, s string, want bool, err error, str func() string) {
	t.Helper()
	switch {
	case (err == nil) != want:
		t.Fatalf("%s %q: accepted %v (%v), the documented form says %v", what, s, err == nil, err, want)
	case err != nil && !errors.Is(err, domain.ErrInvalidInput):
		t.Fatalf("%s %q: %v, want domain.ErrInvalidInput", what, s, err)
	case err == nil && str() != s:
		t.Fatalf("%s %q -> %q", what, s, str())
	}
}

// checkState checks ParseState: a state is "" or kinds separated by
// commas; a parsed state's kinds are the input's, and its String parses
// to the same state.
func checkState(t *testing.T, s string) {
	t.Helper()
	parts := strings.Split(s, ",")
	want := s == "" || !slices.ContainsFunc(parts, func(p string) bool { return !docKind.MatchString(p) })
	st, err := domain.ParseState(s)
	checkForm(t, "state", s, want, err, func() string { return s })
	if err != nil {
		return
	}
	if s == "" {
		parts = nil
	}
	got := st.ActiveKinds()
	if !slices.Equal(sortedSet(got), sortedSet(parts)) {
		t.Fatalf("state %q has kinds %v", s, got)
	}
	again, err := domain.ParseState(st.String())
	if err != nil || again.String() != st.String() {
		t.Fatalf("state %q does not round-trip: %q -> %q %v", s, st, again, err)
	}
}

// sortedSet is the distinct strings of ss in order.
func sortedSet(ss []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(ss)))
}
