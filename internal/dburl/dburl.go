package dburl

import (
	"net/url"
	"os"
	"slices"
	"strings"
)

// Kind is what a --db value names.
type Kind int

// The kinds of --db value.
const (
	// Path is a SQLite file (or a value that names nothing else).
	Path Kind = iota
	// Postgres is a postgres:// or postgresql:// URL.
	Postgres
	// MisspeltPostgres has PostgreSQL's scheme, but not as libpq and pgx
	// read it: in capitals ("Postgres://") or without "//" ("postgres:/").
	MisspeltPostgres
	// OtherURL is a URL of another scheme ("mysql://…"), parsed or not.
	OtherURL
	// KeywordDSN is a libpq keyword/value string ("host=db dbname=x").
	KeywordDSN
)

// IsPostgres reports whether db is a postgres:// or postgresql:// URL, the
// prefixes libpq and pgx take (in lower case only).
func IsPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// Classify says what db names. A file of that name is a Path, whatever
// its name looks like.
func Classify(db string) Kind {
	if IsPostgres(db) {
		return Postgres
	}
	if _, err := os.Stat(db); err == nil {
		return Path
	}
	scheme, rest, ok := Scheme(db)
	switch {
	case ok && (strings.EqualFold(scheme, "postgres") || strings.EqualFold(scheme, "postgresql")):
		return MisspeltPostgres
	case ok && strings.HasPrefix(rest, "//"):
		return OtherURL
	case keywordDSN(db):
		return KeywordDSN
	}
	return Path
}

// Scheme splits db at its first ':' when what comes before is a URL
// scheme (RFC 3986: a letter, then letters, digits, '+', '-', '.').
func Scheme(db string) (scheme, rest string, ok bool) {
	scheme, rest, ok = strings.Cut(db, ":")
	if !ok || scheme == "" || !isLetter(scheme[0]) {
		return "", "", false
	}
	for i := 1; i < len(scheme); i++ {
		if c := scheme[i]; !isLetter(c) && (c < '0' || c > '9') && c != '+' && c != '-' && c != '.' {
			return "", "", false
		}
	}
	return scheme, rest, true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// keywords are libpq connection keywords a keyword/value string names.
var keywords = []string{"host", "hostaddr", "port", "dbname", "user", "password", "sslmode"}

// keywordDSN reports whether db reads as a libpq keyword/value string,
// which would otherwise be taken for the name of a new SQLite log
// (password and all).
func keywordDSN(db string) bool {
	for _, field := range strings.Fields(db) {
		key, _, ok := strings.Cut(field, "=")
		if ok && slices.Contains(keywords, key) {
			return true
		}
	}
	return false
}

// Redact is db for logs and messages: a path as it is, a URL without its
// passwords (its user part's and the password and sslpassword parameters
// libpq reads), a misspelt PostgreSQL URL by its scheme and slashes alone
// (as parsed, its password would be part of a path), and neither a URL
// that does not parse nor a keyword/value string at all.
func Redact(db string) string {
	kind := Classify(db)
	switch {
	case kind == Path:
		return db
	case keywordDSN(db):
		// Also a URL that holds "password=…" after a space, which its
		// parsed query would keep as another parameter's value.
		return "(a keyword/value connection string)"
	case kind == MisspeltPostgres:
		return MisspeltPrefix(db) + "…"
	}
	u, err := url.Parse(db)
	if err != nil {
		if kind == Postgres {
			return "(a PostgreSQL URL that does not parse)"
		}
		return "(a URL that does not parse)"
	}
	q := u.Query()
	for _, secret := range []string{"password", "sslpassword"} {
		if q.Has(secret) {
			q.Set(secret, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}

// MisspeltPrefix is the start of a misspelt PostgreSQL URL as written:
// its scheme, the ':' and the slashes after it ("Postgres://",
// "postgres:/").
func MisspeltPrefix(db string) string {
	scheme, rest, _ := Scheme(db)
	return scheme + ":" + rest[:len(rest)-len(strings.TrimLeft(rest, "/"))]
}
