package sqlitetest

import (
	"database/sql"
	"testing"

	"github.com/mattn/go-sqlite3"
)

// Copy copies the database at from into the one at to, page by page,
// through SQLite's backup API, in one step. Stores open on to see the
// copy as another connection's commit.
func Copy(t testing.TB, from, to string) {
	t.Helper()
	ctx := t.Context()
	src, dst := DB(t, from), DB(t, to)
	sc, err := src.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	dc, err := dst.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	err = dc.Raw(func(d any) error {
		return sc.Raw(func(s any) error {
			b, err := d.(*sqlite3.SQLiteConn).Backup("main", s.(*sqlite3.SQLiteConn), "main")
			if err != nil {
				return err
			}
			if _, err := b.Step(-1); err != nil {
				b.Close()
				return err
			}
			return b.Close()
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// DB opens the database at path with database/sql (go-sqlite3, a 5 s busy
// timeout), outside any store; it is closed when t ends.
func DB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}
