package sqlitedsn_test

import (
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/interactionledger/ledger/internal/sqlitedsn"
	_ "github.com/mattn/go-sqlite3"
)

func TestFile(t *testing.T) {
	q := url.Values{"mode": {"ro"}, "_busy_timeout": {"5000"}}
	for path, want := range map[string]string{
		"/tmp/a#b ?c=d %41/x.db": "file:///tmp/a%23b%20%3Fc=d%20%2541/x.db?_busy_timeout=5000&mode=ro",
		"data/ledger.db":         "file:data/ledger.db?_busy_timeout=5000&mode=ro",
		"//srv/x.db":             "file:////srv/x.db?_busy_timeout=5000&mode=ro",
	} {
		if got := sqlitedsn.File(path, q); got != want {
			t.Errorf("File(%q) = %q, want %q", path, got, want)
		}
	}
	if got := sqlitedsn.File("x.db", nil); got != "file:x.db" {
		t.Errorf("no query: %q", got)
	}
}

// TestFileOpensThatFile opens SQLite through the DSN in a directory whose
// name needs escaping and checks that the file is created at that path.
func TestFileOpensThatFile(t *testing.T) {
	for _, name := range []string{"a#b", "a?b=c", "a%41b", "a b", "a#b ?c %d"} {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "x.db")
			db, err := sql.Open("sqlite3", sqlitedsn.File(path, url.Values{"_journal_mode": {"WAL"}}))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`CREATE TABLE t (x)`); err != nil {
				t.Fatalf("open %q: %v", path, err)
			}
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("the file is not at %q: %v", path, err)
			}
			if es, _ := os.ReadDir(parent); len(es) != 1 {
				t.Fatalf("files beside %q: %v", dir, es)
			}
		})
	}
}
