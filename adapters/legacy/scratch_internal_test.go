package legacy

import (
	"context"
	"database/sql"
	"strings"
	"testing"
)

// TestScratchCommitFailureNamesTheDirectory: a scratch transaction whose
// commit fails (as a full temporary directory makes it fail, the pages
// being written only then) says that the scratch database in its
// directory failed, not only SQLite's message, which would read as the
// event log's.
func TestScratchCommitFailureNamesTheDirectory(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	ctx := context.Background()
	s, err := openScratch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	// A deferred foreign key is checked at the commit: it fails there.
	if _, err := s.conn.ExecContext(ctx, `PRAGMA foreign_keys = ON; CREATE TABLE parent (id INTEGER PRIMARY KEY);
		CREATE TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)`); err != nil {
		t.Fatal(err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO child VALUES (1)`)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "scratch database in "+s.dir) {
		t.Fatalf("failed commit: %v, want it to name the scratch database in %s", err, s.dir)
	}
}
