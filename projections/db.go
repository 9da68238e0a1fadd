package projections

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/pathwatch"
	"github.com/interactionledger/ledger/internal/sqlitedsn"
	"github.com/interactionledger/ledger/internal/walcheckpoint"

	"github.com/google/uuid"
	"github.com/mattn/go-sqlite3"
)

// busyTimeout is how long a writer waits for the views file's write lock.
// A rebuild in another process holds it for one chunk at a time (well under
// a second) and for its final swap; 30 s leaves a wide margin.
const busyTimeout = 30000

// driverName is go-sqlite3 with the views file's connection settings that
// have no DSN parameter.
const driverName = "sqlite3_ledger_views"

func init() {
	// No connection checkpoints inside its commits: a live views file's
	// checkpointer does (openViews). Sorts run in memory, except in builds
	// (lowMemory).
	sqlitedsn.Register(driverName, walcheckpoint.DisableAuto+`; PRAGMA temp_store = MEMORY`)
}

// checkpointPages is how many WAL pages of a live views file wait for a
// checkpoint: ~12 MB rather than SQLite's 4 MB, since a batch of random
// inserts dirties many pages and each checkpoint pays two fsyncs. The
// checkpoint runs on a connection of its own, so the applier's commits
// (and the writes waiting for them) never wait for one; but its syncs
// share the disk with the log's commits. Measured at an offered 10,000
// req/s (12 pairs): 3,000 pages against 10,000, write p99 0.675x and read
// p99 0.78x, CPU per request 1.01x; 1,000 pages cost 1.03x the CPU.
var checkpointPages int64 = 3_000

// cacheKiB is the page cache of each views connection, in KiB.
const cacheKiB = 65536

// buildCacheKiB is the write connection's page cache while a build
// (rebuild, as-of, verify) writes, in KiB; its index sorts then spill to
// temporary files instead of memory. A build inserts in key order and
// sorts each index once, so neither needs much memory. Measured on a 3M
// event log: peak RSS 285 MB with 64 MiB and sorts in memory, 199 MB with
// 8 MiB and sorts on file (215 MB with 16 MiB), in the same time (within
// the noise of 3 runs); on 10M (one run each), 305 MB and 218 MB, 74 s and
// 73 s.
const buildCacheKiB = 8192

// lowMemory gives db's connection the build settings and returns the
// function that restores the usual ones. Builds also let SQLite's sorter
// use a helper thread (PRAGMA threads), which the index sorts at the end
// of a rebuild use while the other core is idle: 10M events, 2 paired
// runs, 28.1 → 27.7 s and 28.4 → 27.6 s.
//
// db must be a pool of one connection (views.write), so that both reach
// the same connection; a live apply sharing it meanwhile runs with the
// smaller cache. temp_store can only change outside a transaction.
func lowMemory(ctx context.Context, db *sql.DB) (restore func(), err error) {
	_, err = db.ExecContext(ctx, fmt.Sprintf(
		`PRAGMA cache_size = %d; PRAGMA temp_store = FILE; PRAGMA threads = 2`, -buildCacheKiB))
	if err != nil {
		return nil, err
	}
	return func() {
		// A failure only leaves the connection with the build settings.
		_, _ = db.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf(
			`PRAGMA cache_size = %d; PRAGMA temp_store = MEMORY; PRAGMA threads = 0`, -cacheKiB))
	}, nil
}

// durability selects the journal and sync settings of a views file.
type durability int

const (
	// shared is a live views file: WAL so that readers never block the
	// applier, synchronous=NORMAL because the file can be rebuilt from the
	// durable log (after a power loss it rolls back with its checkpoint).
	shared durability = iota
	// scratch is a file nobody else uses while it is built (as-of, verify):
	// no journal, no sync.
	scratch
)

// views is one opened views file: a single write connection (SQLite has one
// writer; one connection serialises this process's transactions without a
// mutex) and a pool of read-only connections.
type views struct {
	path  string
	write *sql.DB
	read  *sql.DB
	ckpt  *walcheckpoint.Checkpointer // nil for a scratch file, which has no WAL
	// marked: the checkpoints table has the event columns (createMeta);
	// not in a file of an older ledger that this process may not write.
	marked bool
	// watch checks that path still names the file opened: the read pool
	// opens connections by path as it needs them, and one opened on a file
	// put in its place (a damaged file set aside and built again, a file
	// deleted) would read another file than the one the writer applies to.
	watch *pathwatch.Watch
	// checked is when the watch last found the path unchanged (nanoseconds
	// since opened): reads check it at most every recheckEvery, not on
	// every read (each check reads the watch's inotify queue, a system
	// call, ~1 % of a server's CPU at 10,000 requests a second).
	opened  time.Time
	checked atomic.Int64
}

// recheckEvery is how long a views file found unchanged is taken as still
// unchanged by reads: a read in the first 10 ms after the file was
// replaced may still open the new one.
const recheckEvery = 10 * time.Millisecond

// replaced is domain.ErrUnavailable when path no longer names the file
// this process opened, or when that cannot be checked.
func (v *views) replaced() error {
	if v.watch == nil {
		return nil
	}
	now := time.Since(v.opened).Nanoseconds()
	if now-v.checked.Load() < recheckEvery.Nanoseconds() {
		return nil
	}
	changed, err := v.watch.Changed()
	if err != nil {
		return fmt.Errorf("views file %s: cannot check that it is still the file opened: %w: %w", v.path, err, domain.ErrUnavailable)
	}
	if changed == "" {
		v.checked.Store(now)
		return nil
	}
	return fmt.Errorf("views file %s no longer names the file this process opened (deleted, moved or replaced): "+
		"restart to open it: %w", v.path, domain.ErrUnavailable)
}

func dsn(path string, d durability, readOnly bool) string {
	return sqlitedsn.File(path, query(d, readOnly))
}

// query is dsn's parameters.
func query(d durability, readOnly bool) url.Values {
	q := url.Values{}
	q.Set("_busy_timeout", strconv.Itoa(busyTimeout))
	q.Set("_foreign_keys", "0")
	switch d {
	case shared:
		q.Set("_journal_mode", "WAL")
		q.Set("_synchronous", "NORMAL")
	case scratch:
		q.Set("_journal_mode", "OFF")
		q.Set("_synchronous", "OFF")
	}
	if readOnly {
		q.Set("_query_only", "1")
	} else {
		q.Set("_txlock", "immediate")
	}
	q.Set("_cache_size", strconv.Itoa(-cacheKiB))
	// Reads run a handful of constant statements; keep them prepared.
	q.Set("_stmt_cache_size", "32")
	return q
}

// openViews opens (creating if needed) the views file at path. A shared
// file's WAL checkpointer logs to log and reports to onCheckpoint.
func openViews(ctx context.Context, path string, d durability, log *slog.Logger,
	onCheckpoint func(time.Duration, error)) (*views, error) {
	if path == "" {
		return nil, &domain.ValidationError{Field: "path", Reason: "the views file path is required"}
	}
	w, err := sql.Open(driverName, dsn(path, d, false))
	if err != nil {
		return nil, fmt.Errorf("open views %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open views %s: %w", path, err)
	}
	marked, err := createMeta(ctx, w)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open views %s: %w", path, err)
	}
	r, err := sql.Open(driverName, dsn(path, d, true))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open views %s: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	v := &views{path: path, write: w, read: r, marked: marked, opened: time.Now()}
	v.checked.Store(-recheckEvery.Nanoseconds())
	// The file exists now: the write connection has created it.
	if v.watch, err = pathwatch.New(path); err != nil {
		return nil, errors.Join(fmt.Errorf("open views %s: watch its path: %w", path, err), v.close())
	}
	if d == shared {
		v.ckpt, err = walcheckpoint.Open(ctx, driverName, path, query(shared, false), walcheckpoint.Config{
			Pages: checkpointPages, Finish: v.finishCheckpoint, Log: log, OnCheckpoint: onCheckpoint})
		if err != nil {
			return nil, errors.Join(fmt.Errorf("open views %s: %w", path, err), v.close())
		}
	}
	return v, nil
}

// inTx runs fn in a transaction on one connection of db (begun with
// BEGIN IMMEDIATE, as the write DSN's _txlock asks) and commits it when fn
// succeeds. It does not use database/sql's Tx: a Tx watches its context
// with a goroutine, and every Rows read inside a Tx starts one more, so a
// live batch of one event started up to five goroutines, each a wake-up
// of an idle thread on the path of a write waiting for its read model. On a
// plain connection a statement under a context that cannot end starts
// none.
func inTx(ctx context.Context, db *sql.DB, fn func(querier) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return errors.Join(err, conn.Close())
	}
	err = fn(conn)
	if err == nil {
		err = ctx.Err() // as Tx.Commit: a transaction whose context ended is rolled back
	}
	if err == nil {
		if _, err = conn.ExecContext(context.WithoutCancel(ctx), `COMMIT`); err == nil {
			return conn.Close()
		}
	}
	return errors.Join(err, rollback(ctx, conn))
}

// rollbackSQL ends a transaction; a variable so that a test can make it
// fail.
var rollbackSQL = `ROLLBACK`

// rollback ends conn's transaction, if SQLite has not already rolled it
// back (some errors do), and closes conn; a connection still inside a
// transaction after that is discarded rather than returned to its pool.
func rollback(ctx context.Context, conn *sql.Conn) error {
	_, _ = conn.ExecContext(context.WithoutCancel(ctx), rollbackSQL)
	err := conn.Raw(func(dc any) error {
		if c, ok := dc.(*sqlite3.SQLiteConn); ok && !c.AutoCommit() {
			return driver.ErrBadConn
		}
		return nil
	})
	if errors.Is(err, driver.ErrBadConn) {
		return nil // Raw has closed the connection
	}
	return errors.Join(err, conn.Close())
}

// finishCheckpoint is the views file's walcheckpoint.Finish: on the one
// write connection, so between two of this process's transactions.
func (v *views) finishCheckpoint(ctx context.Context) (int64, error) {
	return walcheckpoint.Run(ctx, v.write)
}

func (v *views) close() error {
	var err error
	if v.ckpt != nil {
		err = v.ckpt.Close()
	}
	if v.watch != nil {
		err = errors.Join(err, v.watch.Close())
	}
	return errors.Join(err, v.read.Close(), v.write.Close())
}

// createMeta creates the tables every views file has: meta (key/value,
// e.g. the cursor key) and checkpoints, and adds the checkpoints' event
// columns to a file made before them; marked is false when the file has
// none because this process may not write it.
//
// A checkpoint row holds the position a projection has applied and, in
// event_position and event_id, the position and id of the last event it
// applied (NULL before the first): Open and each batch check that the log
// still holds that event (checkEvent). The position is a column of its
// own, equal to position whenever this ledger writes the row, so that a
// row an older ledger moved (it sets position and version only, and its
// rebuild replaces the tables the event was applied to) is seen to name no
// event: checkpoints reads a mark only where the two positions are equal.
func createMeta(ctx context.Context, db *sql.DB) (marked bool, err error) {
	_, err = db.ExecContext(ctx, `
CREATE TABLE IF NOT EXISTS meta (
	key   TEXT PRIMARY KEY,
	value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
	projection     TEXT PRIMARY KEY,
	position       INTEGER NOT NULL,
	version        INTEGER NOT NULL,
	event_position INTEGER,
	event_id       BLOB
) WITHOUT ROWID;`)
	if err != nil {
		return false, err
	}
	return addEventColumns(ctx, db)
}

// addEventColumns adds event_position and event_id to the checkpoints of a
// views file made before them, in one transaction that first looks at
// them: another process may be adding them at the same moment (a server
// and a rebuild started together), and a process stopped between two
// statements would leave one column, which the next open would try to add
// again. A file this process may not write (stats or verify on a file made
// read-only) is left as it is, and marked is false: it is read as it is,
// its checkpoints naming no event, as before the columns (a server refuses
// a read-only views file anyway).
func addEventColumns(ctx context.Context, db *sql.DB) (marked bool, err error) {
	missing, err := missingEventColumns(ctx, db)
	if err != nil || len(missing) == 0 {
		return err == nil, err
	}
	err = inTx(ctx, db, func(tx querier) error {
		missing, err := missingEventColumns(ctx, tx)
		for _, col := range missing {
			if err == nil {
				_, err = tx.ExecContext(ctx, `ALTER TABLE checkpoints ADD COLUMN `+col)
			}
		}
		return err
	})
	if readOnly(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("add the checkpoints' event columns: %w", err)
	}
	return true, nil
}

// missingEventColumns returns the definitions of the checkpoints' event
// columns the file lacks.
func missingEventColumns(ctx context.Context, q querier) ([]string, error) {
	var pos, id int
	err := q.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE name = 'event_position'), count(*) FILTER (WHERE name = 'event_id')
FROM pragma_table_info('checkpoints')`).Scan(&pos, &id)
	var missing []string
	if pos == 0 {
		missing = append(missing, "event_position INTEGER")
	}
	if id == 0 {
		missing = append(missing, "event_id BLOB")
	}
	return missing, err
}

// nextGeneration returns a number that names a fresh set of indexes; index
// names must be unique in the file and survive table renames.
func nextGeneration(ctx context.Context, tx querier) (int64, error) {
	var g int64
	err := tx.QueryRowContext(ctx, `
INSERT INTO meta(key, value) VALUES ('generation', 1)
ON CONFLICT(key) DO UPDATE SET value = value + 1
RETURNING value`).Scan(&g)
	return g, err
}

// checkpoint reads projection name's checkpoint with q (inside a
// transaction when q is one), without its event mark; ok is false when
// the projection has no tables yet.
func checkpoint(ctx context.Context, q querier, name string) (pos, version int64, ok bool, err error) {
	all, err := checkpoints(ctx, q, false)
	cp, ok := all[name]
	return cp.pos, cp.version, ok && err == nil, err
}

// savedCheckpoint is a projection's checkpoint row: the position applied,
// the tables' schema version, and the last event applied (zero before the
// first, or when an older ledger wrote the row).
type savedCheckpoint struct {
	pos, version int64
	event        eventMark
}

// eventMark names one event of the log: its position and id.
type eventMark struct {
	pos int64
	id  uuid.UUID
}

// markOf is the mark of e.
func markOf(e domain.Event) eventMark { return eventMark{e.Position, e.ID} }

// markAt is the mark of store's event at pos: for a checkpoint set to pos
// by a build, which does not read every event. Zero for pos 0.
func markAt(ctx context.Context, store domain.EventReader, pos int64) (eventMark, error) {
	if pos == 0 {
		return eventMark{}, nil
	}
	e, err := domain.EventAt(ctx, store, pos)
	if err == nil && e.Position != pos {
		err = fmt.Errorf("the log holds no event at position %d, which the build reached", pos)
	}
	return markOf(e), err
}

// checkpoints reads every projection's checkpoint inside tx, in one
// statement (the applier reads them in each transaction); a projection
// without tables has no entry. Their event marks are read only when
// marked (views.marked: the file has the columns); else they are zero.
func checkpoints(ctx context.Context, q querier, marked bool) (map[string]savedCheckpoint, error) {
	query := `SELECT projection, position, version, NULL, NULL FROM checkpoints`
	if marked {
		query = `SELECT projection, position, version, event_position, event_id FROM checkpoints`
	}
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]savedCheckpoint, len(AllProjections))
	for rows.Next() {
		var name string
		var cp savedCheckpoint
		var at sql.NullInt64
		var id []byte
		if err := rows.Scan(&name, &cp.pos, &cp.version, &at, &id); err != nil {
			return nil, err
		}
		// A mark at another position than the row's was left by an older
		// ledger, which moved the row without it: it may name an event
		// of tables that ledger's rebuild has since replaced.
		if at.Valid && at.Int64 == cp.pos && len(id) == len(cp.event.id) {
			cp.event = eventMark{at.Int64, uuid.UUID(id)}
		}
		out[name] = cp
	}
	return out, rows.Err()
}

// builtFrom reads the LogID (domain.Identified) of the log projection
// name's tables were built from, kept in meta of the database schema (main,
// or an attached file's name); "" when none is recorded (a file older than
// log identities, or built from a store without one).
func builtFrom(ctx context.Context, q querier, schema, name string) (string, error) {
	var id string
	err := q.QueryRowContext(ctx, `SELECT value FROM `+schema+`.meta WHERE key = ?`, "log:"+name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}

// setBuiltFrom records that projection name's tables are built from the
// log named logID; nothing when logID is "" (a store without identity).
func setBuiltFrom(ctx context.Context, tx querier, name, logID string) error {
	if logID == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, `
INSERT INTO meta(key, value) VALUES (?, ?)
ON CONFLICT(key) DO UPDATE SET value = excluded.value`, "log:"+name, logID)
	return err
}

// setCheckpoint sets projection name's checkpoint to last, the log's
// event there (zero: position 0, no event), and its tables' version.
func setCheckpoint(ctx context.Context, tx querier, name string, version int64, last eventMark) error {
	var at, id any
	if last.pos > 0 {
		at, id = last.pos, last.id[:]
	}
	_, err := tx.ExecContext(ctx, `
INSERT INTO checkpoints(projection, position, version, event_position, event_id) VALUES (?, ?, ?, ?, ?)
ON CONFLICT(projection) DO UPDATE SET position = excluded.position, version = excluded.version,
	event_position = excluded.event_position, event_id = excluded.event_id`,
		name, last.pos, version, at, id)
	return err
}

// querier is what *sql.DB, *sql.Conn and *sql.Tx have in common: what
// the projections' statements run on.
type querier interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// violates reports whether err is a SQLite constraint violation of one of
// the given extended codes.
func violates(err error, codes ...sqlite3.ErrNoExtended) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && slices.Contains(codes, se.ExtendedCode)
}

// ErrDamaged marks a views file that SQLite finds malformed or not a
// database at all (cut short, overwritten): nothing in it can be trusted
// or repaired in place, and since it is only derived from the log, the
// remedy is to set it aside and build it again (ledger rebuild does).
var ErrDamaged = errors.New("the views file is damaged")

// damaged wraps err in ErrDamaged, naming path and the remedy, when SQLite
// found the views file malformed or not a database. The error's code alone
// does not say which file: a corrupt log (read by a catch-up or a rebuild)
// answers with the same codes, and a sound views file must not be set
// aside for it, so the file itself is checked (Damaged).
func damaged(ctx context.Context, path string, err error) error {
	if !corrupt(err) || !Damaged(ctx, path) {
		return err
	}
	if !strings.Contains(err.Error(), path) {
		err = fmt.Errorf("%s: %w", path, err)
	}
	return fmt.Errorf("%w: %w (ledger rebuild sets it aside and builds it again)", ErrDamaged, err)
}

// readOnly reports whether err is SQLite's "attempt to write a readonly
// database".
func readOnly(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrReadonly
}

// corrupt reports whether err is SQLite's "malformed" or "not a database".
func corrupt(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrCorrupt || se.Code == sqlite3.ErrNotADB)
}

// Damaged reports whether SQLite finds the views file at path malformed
// or not a database, by its integrity check on a read-only connection
// (which, unlike the quick check, compares each index with its table: a
// corrupt index is damage too). A missing or unreadable file is not
// damaged. It reads the whole file: only an error with SQLite's corrupt
// codes calls it.
func Damaged(ctx context.Context, path string) bool {
	db, err := sql.Open(driverName, sqlitedsn.File(path, url.Values{"mode": {"ro"}}))
	if err != nil {
		return false
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check(1)`).Scan(&res); err != nil {
		return corrupt(err)
	}
	return res != "ok"
}

// refuseReadOnly fails when the write connection cannot write the file.
// SQLite opens a file it may not write read-only without a word, and that
// connection stays read-only after the file is writable again: a server
// would come up ready, fail at its first batch and never heal without a
// restart. The statement writes nothing, but SQLite checks at its start
// that the connection may write.
func (v *views) refuseReadOnly(ctx context.Context) error {
	err := inTx(ctx, v.write, func(tx querier) error {
		_, err := tx.ExecContext(ctx, `UPDATE meta SET value = value WHERE 0`)
		return err
	})
	if readOnly(err) {
		return fmt.Errorf("views file %s is read-only (a server applies the log to it; make it and its directory writable): %w", v.path, err)
	}
	return err
}
