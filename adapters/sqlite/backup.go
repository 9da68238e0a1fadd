package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"

	"github.com/google/uuid"
	"github.com/mattn/go-sqlite3"

	"github.com/interactionledger/ledger/adapters/logcopy"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/sqlitedsn"
)

// backupPages is how many pages each step of a backup copies: ~4 MB of
// the default 4 KiB pages, between two looks at the context and two
// progress reports. A variable so that a test can make a small log take
// many steps.
var backupPages = 1024

// BackupResult describes the log a backup copied, as its read transaction
// saw it, and as read back from the copy.
type BackupResult struct {
	LogID  string        // the log's identity ("" in a log older than migration 0004)
	Schema int           // the schema version (migrations applied)
	Head   int64         // the last position (0: no event)
	LastID string        // the last event's id ("" without events)
	Pages  int           // pages copied
	Bytes  int64         // the copy's size
	Sealed bool          // the log was moved to another store (ledger import log) and refuses writes
	Moved  logcopy.Moved // where and when, when Sealed
}

// Backup copies the SQLite event log at from into a new file at to,
// page by page through SQLite's online backup API, while other processes
// (a running server) go on writing it. The copy is one consistent
// snapshot: a read transaction on the source is held from the first page
// to the last, so commits made meanwhile are neither in it nor restart it
// (a backup without it starts again after every commit of another
// connection, and never ends under a steady writer). The snapshot is
// read and read back from the copy (head, last event id, identity,
// schema) and the copy is checked with PRAGMA quick_check before Backup
// returns; the copy is synced to disk (synchronous=FULL).
//
// to must be a new, empty file or missing; the caller renames it into
// place. report, if not nil, is called after each step with the pages
// copied and the total. A cancelled ctx stops the copy between two steps
// with ctx's error; the caller removes to. from must hold an event log
// (an events table: otherwise the error wraps domain.ErrInvalidInput); any
// schema version is copied as it is.
func Backup(ctx context.Context, from, to string, report func(done, total int)) (BackupResult, error) {
	src, err := openBackupDB(from, true)
	if err != nil {
		return BackupResult{}, err
	}
	defer src.Close()
	dst, err := openBackupDB(to, false)
	if err != nil {
		return BackupResult{}, err
	}
	defer dst.Close()
	sc, err := src.Conn(ctx)
	if err != nil {
		return BackupResult{}, fmt.Errorf("backup: open %s: %w", from, translate(err))
	}
	defer sc.Close()
	if _, err := sc.ExecContext(ctx, `BEGIN`); err != nil {
		return BackupResult{}, fmt.Errorf("backup: begin a read of %s: %w", from, translate(err))
	}
	defer sc.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`) //nolint:errcheck // a read transaction
	want, err := describeLog(ctx, sc)
	if err != nil {
		return BackupResult{}, fmt.Errorf("backup: read %s: %w", from, err)
	}
	pages, err := copyPages(ctx, sc, dst, report)
	if err != nil {
		return BackupResult{}, err
	}
	got, err := checkCopy(ctx, dst, to, want)
	got.Pages = pages
	return got, err
}

// openBackupDB opens one end of a backup on a single connection: the
// source read-only, the copy with synchronous=FULL, so the backup's
// last commit is synced.
func openBackupDB(path string, readOnly bool) (*sql.DB, error) {
	q := Config{BusyTimeout: DefaultBusyTimeout, Synchronous: "FULL"}.params(readOnly)
	q.Del("_txlock")
	q.Del("_foreign_keys")
	db, err := sql.Open(driverName, sqlitedsn.File(path, q))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// describeLog reads what a backup checks its copy against. q holds the
// read transaction whose snapshot is copied.
func describeLog(ctx context.Context, q queryer) (BackupResult, error) {
	var r BackupResult
	if ok, err := hasTable(ctx, q, "events"); err != nil || !ok {
		return r, cmp.Or(err, fmt.Errorf("no event log in the file (no events table): %w", domain.ErrInvalidInput))
	}
	var last []byte
	err := q.QueryRowContext(ctx, `SELECT position, id FROM events ORDER BY position DESC LIMIT 1`).Scan(&r.Head, &last)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return r, translate(err)
	}
	if id, err := uuid.FromBytes(last); err == nil {
		r.LastID = id.String()
	}
	if err := optionalRow(ctx, q, "log_identity", `SELECT id FROM log_identity`, &r.LogID); err != nil {
		return r, err
	}
	if err := optionalRow(ctx, q, "schema_migrations", `SELECT coalesce(max(version), 0) FROM schema_migrations`, &r.Schema); err != nil {
		return r, err
	}
	if ok, err := hasTable(ctx, q, "log_moved"); err != nil || !ok {
		return r, err
	}
	r.Moved, r.Sealed, err = movedIn(ctx, q)
	return r, err
}

// hasTable reports whether the database holds the table (tables of later
// migrations are missing from an older log).
func hasTable(ctx context.Context, q queryer, table string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, table).Scan(&n)
	return n > 0, translate(err)
}

// optionalRow scans query's one row into dst when table exists.
func optionalRow(ctx context.Context, q queryer, table, query string, dst any) error {
	if ok, err := hasTable(ctx, q, table); err != nil || !ok {
		return err
	}
	return translate(q.QueryRowContext(ctx, query).Scan(dst))
}

// copyPages runs the backup API from the connection sc, inside its read
// transaction, into dst, backupPages at a time.
func copyPages(ctx context.Context, sc *sql.Conn, dst *sql.DB, report func(done, total int)) (int, error) {
	dc, err := dst.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("backup: open the copy: %w", translate(err))
	}
	defer dc.Close()
	var pages int
	err = dc.Raw(func(d any) error {
		return sc.Raw(func(s any) error {
			b, err := d.(*sqlite3.SQLiteConn).Backup("main", s.(*sqlite3.SQLiteConn), "main")
			if err != nil {
				return err
			}
			pages, err = stepAll(ctx, b, report)
			return errors.Join(err, b.Close())
		})
	})
	if err != nil {
		return 0, fmt.Errorf("backup: copy: %w", err)
	}
	return pages, nil
}

// stepAll steps b to its end, reporting after each step.
func stepAll(ctx context.Context, b *sqlite3.SQLiteBackup, report func(done, total int)) (int, error) {
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		done, err := b.Step(backupPages)
		if err != nil {
			return 0, err
		}
		total := b.PageCount()
		if report != nil {
			report(total-b.Remaining(), total)
		}
		if done {
			return total, nil
		}
	}
}

// checkCopy reads the copy at path back and compares it with want (the
// snapshot copied), after SQLite's quick_check of its pages and indexes.
func checkCopy(ctx context.Context, dst *sql.DB, path string, want BackupResult) (BackupResult, error) {
	var ok string
	if err := dst.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&ok); err != nil {
		return want, fmt.Errorf("backup: check the copy: %w", translate(err))
	}
	if ok != "ok" {
		return want, fmt.Errorf("backup: the copy failed SQLite's quick_check: %s", ok)
	}
	got, err := describeLog(ctx, dst)
	if err != nil {
		return want, fmt.Errorf("backup: read the copy back: %w", err)
	}
	if got != want {
		return want, fmt.Errorf("backup: the copy reads %+v, the log read %+v", got, want)
	}
	info, err := os.Stat(path)
	if err != nil {
		return want, fmt.Errorf("backup: %w", err)
	}
	got.Bytes = info.Size()
	return got, nil
}
