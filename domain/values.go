package domain

import (
	"slices"
	"strconv"
	"strings"
)

// The forms of kind names, target types and ids. They are checked on every
// request, so they are plain byte tests rather than regular expressions;
// String gives the equivalent expression for error messages.
var (
	kindPattern       = namePattern{first: lower, rest: lower | digit | underscore, max: 32}
	targetTypePattern = namePattern{first: lower, rest: lower | digit | underscore | dash, max: 32}
	idPattern         = namePattern{first: idChars, rest: idChars, max: 128}
)

// charClass is a set of ASCII character groups.
type charClass uint8

const (
	lower charClass = 1 << iota
	upper
	digit
	underscore
	dash
	dot
	colonAt // : and @

	idChars = lower | upper | digit | underscore | dash | dot | colonAt
)

func (c charClass) has(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z':
		return c&lower != 0
	case b >= 'A' && b <= 'Z':
		return c&upper != 0
	case b >= '0' && b <= '9':
		return c&digit != 0
	case b == '_':
		return c&underscore != 0
	case b == '-':
		return c&dash != 0
	case b == '.':
		return c&dot != 0
	case b == ':' || b == '@':
		return c&colonAt != 0
	}
	return false
}

// expr is c as a regular-expression bracket expression.
func (c charClass) expr() string {
	var b strings.Builder
	for _, g := range []struct {
		bit  charClass
		text string
	}{{upper, "A-Z"}, {lower, "a-z"}, {digit, "0-9"}, {dot, "."}, {underscore, "_"}, {colonAt, ":@"}, {dash, "-"}} {
		if c&g.bit != 0 {
			b.WriteString(g.text)
		}
	}
	return "[" + b.String() + "]"
}

// namePattern is a non-empty string of at most max bytes: one byte of
// first, then bytes of rest.
type namePattern struct {
	first, rest charClass
	max         int
}

// MatchString reports whether s has the pattern's form.
func (p namePattern) MatchString(s string) bool {
	if s == "" || len(s) > p.max || !p.first.has(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !p.rest.has(s[i]) {
			return false
		}
	}
	return true
}

// String is the pattern as a regular expression.
func (p namePattern) String() string {
	if p.first == p.rest {
		return "^" + p.first.expr() + "{1," + strconv.Itoa(p.max) + "}$"
	}
	return "^" + p.first.expr() + p.rest.expr() + "{0," + strconv.Itoa(p.max-1) + "}$"
}

// Kind is an interaction kind such as "like" or "collect". The zero Kind is
// invalid.
type Kind struct{ name string }

// ParseKind checks the form of a kind name (not whether it is configured;
// see KindSet.Parse). It returns a *ValidationError for a malformed name.
func ParseKind(s string) (Kind, error) {
	if !kindPattern.MatchString(s) {
		return Kind{}, invalid("kind", "%q must match %s", clip(s), kindPattern)
	}
	return Kind{name: s}, nil
}

// String returns the kind's name.
func (k Kind) String() string { return k.name }

// IsZero reports whether k is the invalid zero Kind.
func (k Kind) IsZero() bool { return k.name == "" }

// DefaultKinds is the kind set used when none is configured.
var DefaultKinds = []string{"like", "collect"}

// KindSet is the configured set of kinds, in configuration order. It is
// immutable and safe for concurrent use.
type KindSet struct{ kinds []Kind }

// NewKindSet builds a set from names. It returns a *ValidationError for a
// malformed or repeated name, or an empty list.
func NewKindSet(names []string) (KindSet, error) {
	if len(names) == 0 {
		return KindSet{}, invalid("kinds", "at least one kind is required")
	}
	var set KindSet
	for _, n := range names {
		k, err := ParseKind(strings.TrimSpace(n))
		if err != nil {
			return KindSet{}, err
		}
		if set.Has(k) {
			return KindSet{}, invalid("kinds", "%q is listed twice", n)
		}
		set.kinds = append(set.kinds, k)
	}
	return set, nil
}

// MustKindSet is NewKindSet that panics on error, for tests and constants.
func MustKindSet(names ...string) KindSet {
	s, err := NewKindSet(names)
	if err != nil {
		panic(err)
	}
	return s
}

// Parse returns the configured kind named s. It returns a *ValidationError
// for a malformed name and ErrUnknownKind for a well-formed one that is not
// configured.
func (s KindSet) Parse(name string) (Kind, error) {
	k, err := ParseKind(name)
	if err != nil {
		return Kind{}, err
	}
	if !s.Has(k) {
		return Kind{}, &unknownKindError{name: name}
	}
	return k, nil
}

type unknownKindError struct{ name string }

func (e *unknownKindError) Error() string        { return "kind " + e.name + " is not configured" }
func (e *unknownKindError) Is(target error) bool { return target == ErrUnknownKind }

// Has reports whether k is in the set.
func (s KindSet) Has(k Kind) bool { return slices.Contains(s.kinds, k) }

// Kinds returns the kinds in configuration order (a copy).
func (s KindSet) Kinds() []Kind { return slices.Clone(s.kinds) }

// Names returns the kind names in configuration order.
func (s KindSet) Names() []string {
	out := make([]string, len(s.kinds))
	for i, k := range s.kinds {
		out[i] = k.name
	}
	return out
}

// Counts returns a count for every kind of the set, in a new map: m's, or
// 0 where m has none. Kinds m has that the set lacks are left out.
func (s KindSet) Counts(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(s.kinds))
	for _, k := range s.kinds {
		out[k.name] = m[k.name]
	}
	return out
}

// Flags returns, for every kind of the set, whether on reports it on.
func (s KindSet) Flags(on func(Kind) bool) map[string]bool {
	out := make(map[string]bool, len(s.kinds))
	for _, k := range s.kinds {
		out[k.name] = on(k)
	}
	return out
}

// Target is the thing a user interacts with: a type and an id, written
// "type/id". The zero Target is invalid.
type Target struct{ typ, id string }

// NewTarget validates a target's type and id. It returns a
// *ValidationError naming the bad part.
func NewTarget(typ, id string) (Target, error) {
	if err := ValidateTargetType(typ); err != nil {
		return Target{}, err
	}
	if !idPattern.MatchString(id) {
		return Target{}, invalid("target_id", "%q must match %s", clip(id), idPattern)
	}
	return Target{typ: typ, id: id}, nil
}

// ValidateTargetType checks the form of a target type alone (used by
// filters). It returns a *ValidationError.
func ValidateTargetType(typ string) error {
	if !targetTypePattern.MatchString(typ) {
		return invalid("target_type", "%q must match %s", clip(typ), targetTypePattern)
	}
	return nil
}

// ParseTarget parses "type/id". It returns a *ValidationError.
func ParseTarget(s string) (Target, error) {
	typ, id, ok := strings.Cut(s, "/")
	if !ok {
		return Target{}, invalid("target", "%q must be type/id", clip(s))
	}
	return NewTarget(typ, id)
}

// Type returns the target's type.
func (t Target) Type() string { return t.typ }

// ID returns the target's id.
func (t Target) ID() string { return t.id }

// String returns "type/id".
func (t Target) String() string { return t.typ + "/" + t.id }

// IsZero reports whether t is the invalid zero Target.
func (t Target) IsZero() bool { return t.typ == "" }

// UserID identifies the acting user. The zero UserID is invalid.
type UserID struct{ id string }

// NewUserID validates a user id. It returns a *ValidationError.
func NewUserID(s string) (UserID, error) {
	if !idPattern.MatchString(s) {
		return UserID{}, invalid("user", "%q must match %s", clip(s), idPattern)
	}
	return UserID{id: s}, nil
}

// String returns the id.
func (u UserID) String() string { return u.id }

// IsZero reports whether u is the invalid zero UserID.
func (u UserID) IsZero() bool { return u.id == "" }

// StreamID names one (user, target) stream: every interaction of one user
// with one target, whatever the kind.
type StreamID struct {
	User   UserID
	Target Target
}

// String returns "type/id/user"; '/' appears in none of the parts, so the
// form is unambiguous.
func (s StreamID) String() string { return s.Target.String() + "/" + s.User.String() }

// clip keeps error messages bounded when the input is huge or hostile.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
