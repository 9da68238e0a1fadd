package legacy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/interactionledger/ledger/internal/sqlitedsn"
	_ "github.com/mattn/go-sqlite3" // the scratch database's driver
)

// scratchSchema is the scratch database of one plan: row holds the file's
// good rows, rejected its bad ones, step every event of the rows that pass
// their pair's check (of its row: line), plan the same events in the order
// they are appended (n), and conflict and conflicted what Apply found.
// Times are Unix seconds; a step's stream numbers its user and target.
const scratchSchema = `
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -16384;
CREATE TABLE row (line INTEGER PRIMARY KEY, id INTEGER NOT NULL, id_text TEXT NOT NULL,
	user TEXT NOT NULL, target_type TEXT NOT NULL, target_id TEXT NOT NULL, kind TEXT NOT NULL,
	deleted INTEGER NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL);
CREATE TABLE rejected (line INTEGER NOT NULL, col TEXT NOT NULL, reason TEXT NOT NULL);
CREATE TABLE step (at INTEGER NOT NULL, pair_line INTEGER NOT NULL, seq INTEGER NOT NULL,
	line INTEGER NOT NULL, cancel INTEGER NOT NULL, stream INTEGER NOT NULL);
CREATE TABLE plan (n INTEGER PRIMARY KEY, line INTEGER NOT NULL, cancel INTEGER NOT NULL,
	at INTEGER NOT NULL, after INTEGER NOT NULL);
CREATE TABLE conflict (n INTEGER PRIMARY KEY, line INTEGER NOT NULL, reason TEXT NOT NULL);
CREATE TABLE conflicted (user TEXT NOT NULL, target_type TEXT NOT NULL, target_id TEXT NOT NULL,
	line INTEGER NOT NULL, PRIMARY KEY (user, target_type, target_id)) WITHOUT ROWID;
`

// scratch is a plan's temporary SQLite database: a file in a directory of
// its own under os.TempDir(), written without a journal or fsync (a crash
// loses nothing the file does not hold), removed by close. It is one
// connection, so that a plan can be read while what Apply finds is
// written.
type scratch struct {
	dir  string
	db   *sql.DB
	conn *sql.Conn
}

// openScratch creates a scratch database.
func openScratch(ctx context.Context) (_ *scratch, err error) {
	dir, err := os.MkdirTemp("", "ledger-import-")
	if err != nil {
		return nil, fmt.Errorf("scratch database: %w", err)
	}
	s := &scratch{dir: dir}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	s.db, err = sql.Open("sqlite3", sqlitedsn.File(filepath.Join(dir, "plan.db"), url.Values{}))
	if err != nil {
		return nil, fmt.Errorf("scratch database: %w", err)
	}
	s.db.SetMaxOpenConns(1)
	if s.conn, err = s.db.Conn(ctx); err != nil {
		return nil, fmt.Errorf("scratch database: %w", err)
	}
	if _, err = s.conn.ExecContext(ctx, scratchSchema); err != nil {
		return nil, fmt.Errorf("scratch database: %w", err)
	}
	return s, nil
}

// close closes the database and removes its directory.
func (s *scratch) close() error {
	var errs []error
	if s.conn != nil {
		errs = append(errs, s.conn.Close())
	}
	if s.db != nil {
		errs = append(errs, s.db.Close())
	}
	errs = append(errs, os.RemoveAll(s.dir))
	return errors.Join(errs...)
}

// inTx runs f in a transaction of the scratch database. A failed begin
// or commit names the scratch directory: without a journal, a full
// temporary directory fails at the commit, and a bare "database or disk
// is full" would read as the event log's.
func (s *scratch) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.conn.BeginTx(ctx, nil)
	if err != nil {
		return s.failed(err)
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return s.failed(err)
	}
	return nil
}

// failed is err, a failure of the scratch database itself, naming its
// directory.
func (s *scratch) failed(err error) error {
	return fmt.Errorf("scratch database in %s (the temporary directory, $TMPDIR): %w", s.dir, err)
}
