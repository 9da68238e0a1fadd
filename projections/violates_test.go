package projections

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/mattn/go-sqlite3"
)

// TestViolates: constraint failures are told apart by the driver's
// extended codes, which is how the projections turn them into
// ErrInconsistent.
func TestViolates(t *testing.T) {
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(t.TempDir(), "v.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE t (k TEXT PRIMARY KEY, u TEXT UNIQUE, n INTEGER CHECK (n >= 0))`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO t VALUES ('a', 'x', 1)`); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, stmt string
		code       sqlite3.ErrNoExtended
	}{
		{"Check", `INSERT INTO t VALUES ('b', 'y', -1)`, sqlite3.ErrConstraintCheck},
		{"Unique", `INSERT INTO t VALUES ('c', 'x', 1)`, sqlite3.ErrConstraintUnique},
		{"PrimaryKey", `INSERT INTO t VALUES ('a', 'z', 1)`, sqlite3.ErrConstraintPrimaryKey},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := db.Exec(c.stmt)
			if !violates(err, c.code) {
				t.Fatalf("%v does not violate %v", err, c.code)
			}
			for _, other := range cases {
				if other.code != c.code && violates(err, other.code) {
					t.Fatalf("%v also violates %v", err, other.code)
				}
			}
		})
	}
	if violates(nil, sqlite3.ErrConstraintCheck) {
		t.Fatal("nil violates a constraint")
	}
}
