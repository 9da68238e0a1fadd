package dburl

import "testing"

// TestClassify: the kinds of --db value, and a file's name being a path
// whatever it looks like.
func TestClassify(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for db, want := range map[string]Kind{
		"./data/ledger.db":         Path,
		"data:/x":                  Path,
		"postgres://h/db":          Postgres,
		"postgresql://h/db":        Postgres,
		"Postgres://h/db":          MisspeltPostgres,
		"postgres:/h/db":           MisspeltPostgres,
		"POSTGRESQL:h":             MisspeltPostgres,
		"mysql://u:p@h/db":         OtherURL,
		"mysql://u:p@h/%zz":        OtherURL,
		"host=db dbname=ledger":    KeywordDSN,
		"1http://x":                Path,
		"file name with spaces.db": Path,
	} {
		if got := Classify(db); got != want {
			t.Errorf("Classify(%q) = %d, want %d", db, got, want)
		}
	}
}
