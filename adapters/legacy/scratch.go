package legacy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

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
// loses nothing the file does not hold), removed by close. The directory's
// name says whose it is (scratchOwner), so that the next import removes it
// if its process was killed outright (removeAbandoned). It is one
// connection, so that a plan can be read while what Apply finds is
// written.
type scratch struct {
	dir  string
	db   *sql.DB
	conn *sql.Conn
}

// openScratch creates a scratch database, after removing those that
// imports killed outright left behind.
func openScratch(ctx context.Context) (_ *scratch, err error) {
	self := scratchOwner()
	removeAbandoned(os.TempDir(), self)
	pattern := scratchPrefix
	if self != "" {
		pattern += self + strconv.Itoa(os.Getpid()) + "-"
	}
	dir, err := os.MkdirTemp("", pattern)
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

// scratchPrefix starts the name of every scratch directory; then come
// its owner's scratchOwner and pid (when known) and a random part.
const scratchPrefix = "ledger-import-"

// scratchOwner names where this process's pid means this process: its
// boot (Linux's boot_id: a TMPDIR shared by machines, or kept across a
// reboot) and its PID namespace (a container's, whose pids are not
// ours), as "<boot>-<namespace>-". It is "" when either cannot be read
// (no /proc): then nobody can tell whether a pid is running, and the
// directories are neither named by one nor removed.
func scratchOwner() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	ns, err := os.Readlink("/proc/self/ns/pid") // pid:[4026531836]
	inode, ok := strings.CutPrefix(ns, "pid:[")
	inode, closed := strings.CutSuffix(inode, "]")
	id := strings.ReplaceAll(strings.TrimSpace(string(boot)), "-", "")
	if err != nil || !ok || !closed || !digits(inode) || id == "" || strings.Contains(id, "/") {
		return ""
	}
	return id + "-" + inode + "-"
}

// removeAbandoned removes the scratch directories in dir that an import
// of self's boot and PID namespace, run by this user, left when it was
// killed outright (SIGKILL, a crash): those whose pid runs no process.
// Any other is left alone: a live import's, another user's, another
// boot's or namespace's, an older version's (no pid), or any whose owner
// cannot be told. Failures are ignored: the import goes on, and a
// directory left is removed by a later import or by hand.
func removeAbandoned(dir, self string) {
	if self == "" {
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), scratchPrefix+self)
		pid, _, cut := strings.Cut(rest, "-")
		n, err := strconv.Atoi(pid)
		if !ok || !cut || err != nil || !digits(pid) || n <= 0 || running(n) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if info, err := os.Lstat(path); err == nil && info.IsDir() && ownedByMe(info) {
			_ = os.RemoveAll(path)
		}
	}
}

// digits reports whether s is a non-empty run of ASCII digits.
func digits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}
