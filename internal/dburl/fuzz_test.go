package dburl

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzRedact builds --db values that hold a password, in a URL's user part
// or in its password or sslpassword parameter, around arbitrary schemes,
// separators, hosts and the rest. A value that is a URL (a scheme and
// "//") or has PostgreSQL's scheme in any spelling must not be taken for
// a SQLite path (whose name messages show as it is), and Redact must not
// show the password.
func FuzzRedact(f *testing.F) {
	for _, s := range []struct {
		scheme, sep, host, rest string
		where                   uint8
	}{
		{"postgres", "://", "db:5432", "/ledger", 0},
		{"postgresql", "://", "db", "/ledger?sslmode=disable", 1},
		{"postgres", "://", "db", "/ledger?application_name=x", 2},
		{"Postgres", "://", "127.0.0.1", "/db", 0},
		{"postgress", "://", "h", "/db", 1},
		{"pg", "://", "h", "/db", 0},
		{"postgres", ":/", "h", "/db", 0},
		{"mysql", "://", "h", "/%zz", 0},
		{"postgres", "://", "h", "/db?x=1 ", 1},
	} {
		f.Add(s.scheme, s.sep, s.host, s.rest, s.where)
	}
	f.Fuzz(func(t *testing.T, scheme, sep, host, rest string, where uint8) {
		const secret = "Pw9secretZ"
		var db string
		switch where % 3 {
		case 0:
			db = scheme + sep + "u:" + secret + "@" + host + rest
		case 1:
			db = scheme + sep + "u@" + host + rest + "?password=" + secret
		default:
			db = scheme + sep + host + rest + "&sslpassword=" + secret
		}
		if strings.Count(db, secret) != 1 || !holdsPassword(db, secret) {
			return
		}
		if Classify(db) == Path {
			t.Fatalf("%q, a URL with a password, taken for a SQLite path", db)
		}
		if got := Redact(db); strings.Contains(got, secret) {
			t.Fatalf("Redact(%q) = %q", db, got)
		}
	})
}

// holdsPassword reports whether db is a URL (a scheme, then "//") that
// holds secret as its password or its password or sslpassword
// parameter, or has PostgreSQL's scheme misspelt.
func holdsPassword(db, secret string) bool {
	scheme, rest, ok := Scheme(db)
	switch {
	case !ok:
		return false
	case !IsPostgres(db) && (strings.EqualFold(scheme, "postgres") || strings.EqualFold(scheme, "postgresql")):
		return true // misspelt: what is a password in it is a guess
	case !strings.HasPrefix(rest, "//"):
		return false
	}
	u, err := url.Parse(db)
	if err != nil {
		return true // a URL that does not parse: the password may be anywhere
	}
	pw, _ := u.User.Password()
	q, _ := url.ParseQuery(u.RawQuery)
	return pw == secret || q.Get("password") == secret || q.Get("sslpassword") == secret
}
