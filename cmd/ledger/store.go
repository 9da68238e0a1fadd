package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"log/slog"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/interactionledger/ledger/adapters/logcopy"
	"github.com/interactionledger/ledger/adapters/postgres"
	"github.com/interactionledger/ledger/adapters/sqlite"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/dburl"
	"github.com/interactionledger/ledger/projections"
)

// DefaultClusterViews is where a node keeps its read models when --db is a
// PostgreSQL URL and --views is not given.
const DefaultClusterViews = "./data/ledger.views"

// commitStats is one group commit as the server's metrics and health see
// it, whichever store made it.
type commitStats struct {
	Appends, Failed, Events int
	Duration                time.Duration
	Err                     error
	// ClockBehind and RecordedAt are the store's CommitStats': how far
	// the commit's clock was behind the log's last recorded_at, and the
	// time its events were recorded at.
	ClockBehind time.Duration
	RecordedAt  time.Time
}

// storeOptions say how a command uses the store.
type storeOptions struct {
	// readOnly opens the store without a writer, for reads only (a
	// server may be writing it); the store must exist.
	readOnly bool
	// onCommit observes every group commit.
	onCommit func(commitStats)
	// onCheckpoint observes every WAL checkpoint of a SQLite log.
	onCheckpoint func(took time.Duration, err error)
	// what names the store in usage errors; "" is --db.
	what string
	// busyTimeout, when not 0, is how long each statement of a SQLite
	// store waits for another connection's lock (sqlite.Config.BusyTimeout).
	busyTimeout time.Duration
	// checked says that the command checked db (checkDB, or import log's
	// checkSource) before: openStore does not check it again.
	checked bool
}

// name is what usage errors call the store.
func (o storeOptions) name() string {
	if o.what == "" {
		return "--db"
	}
	return o.what
}

// logStore is an opened event store with what the commands need beside
// the port: closing it, its statistics and a writability check.
type logStore struct {
	domain.EventStore
	// latest is the store's domain.LatestReader (both stores have one):
	// embedding the port alone hides it, and a rebuild through a logStore
	// then reads the whole log instead of each interaction's last event.
	latest domain.LatestReader
	// recent is the store's domain.RecentReader, nil when it has none
	// (PostgreSQL); hidden in the same way, a server's projections would
	// query the log for every one of its own commits.
	recent   domain.RecentReader
	close    func() error
	stats    func(context.Context) (StatsReport, error)
	writable func(context.Context) error
	// copier is the store's own logcopy.Store (import log).
	copier logcopy.Store
	// sealed is the store's own logcopy.Sealed: where a moved log went.
	sealed logcopy.Sealed
}

// Moved is the store's own (logcopy.Sealed); embedding the port alone
// hides it, and the relay of a sealed log could not see it moved.
func (s *logStore) Moved(ctx context.Context) (logcopy.Moved, bool, error) {
	return s.sealed.Moved(ctx)
}

var _ domain.Clocked = (*logStore)(nil)

// Now is the clock the store records events by (domain.NowOf): embedding
// the port alone hid PostgreSQL's, the database server's.
func (s *logStore) Now(ctx context.Context) (time.Time, error) {
	return domain.NowOf(ctx, s.EventStore)
}

// Close closes the store.
func (s *logStore) Close() error { return s.close() }

// ReadLatest is the store's own (domain.LatestReader), which rebuilds into
// empty tables use.
func (s *logStore) ReadLatest(ctx context.Context, upTo int64) iter.Seq2[domain.Toggle, error] {
	return s.latest.ReadLatest(ctx, upTo)
}

// AppendRecent is the store's own (domain.RecentReader) when it has one;
// otherwise it holds nothing, and readers query the log.
func (s *logStore) AppendRecent(dst []domain.Event, after int64, limit int) ([]domain.Event, bool) {
	if s.recent == nil {
		return dst, false
	}
	return s.recent.AppendRecent(dst, after, limit)
}

// Decide is the store's own when it decides where it appends (both
// bundled stores do), else domain.DecideThenAppend (domain.DecideIn):
// embedding the port alone hid it, and every write of a server read a
// snapshot before appending.
func (s *logStore) Decide(ctx context.Context, req domain.DecideRequest) (domain.Outcome, error) {
	return domain.DecideIn(ctx, s.EventStore, req)
}

var _ domain.QueueingStore = (*logStore)(nil)

// QueueDecide is the store's own when it queues decided commands (both
// bundled stores do), else a Decide at once (domain.QueueDecideIn): an
// import through a logStore then shares commits as over the store.
func (s *logStore) QueueDecide(ctx context.Context, req domain.DecideRequest) (domain.Queued, error) {
	return domain.QueueDecideIn(ctx, s.EventStore, req)
}

// Writable is nil when the store can take writes: the SQLite file opens for
// writing, or PostgreSQL answers.
func (s *logStore) Writable(ctx context.Context) error { return s.writable(ctx) }

// openStore opens the event store --db names: a PostgreSQL database for a
// postgres:// or postgresql:// URL, else a SQLite file. It is the one place
// the commands choose a store.
func openStore(ctx context.Context, db string, opts storeOptions, log *slog.Logger) (*logStore, error) {
	if !opts.checked {
		if err := checkDB(db); err != nil {
			return nil, err
		}
	}
	if postgres.IsURL(db) {
		return openPostgres(ctx, db, opts, log)
	}
	return openSQLite(ctx, db, opts, log)
}

// checkDB is checkStore, as a variable so that a test counts its calls.
var checkDB = checkStore

// checkStore refuses a --db that names no store, before anything is opened
// (import checks it before it reads its file): empty, a PostgreSQL URL
// naming no database, a misspelt one, a URL of another scheme, a libpq
// keyword/value string, a path that can hold no SQLite log
// (logPathUsable). Its messages show the URL without its passwords.
func checkStore(db string) error {
	if db == "" {
		return usageErr("--db \"\": give a SQLite file or a postgres:// URL")
	}
	switch dburl.Classify(db) {
	case dburl.Postgres:
		if noDatabase(db) {
			return usageErr("--db %q names no database: give it as the URL's path, postgres://HOST/DBNAME "+
				"(libpq's default, the user's name, got the ledger's tables)", dburl.Redact(db))
		}
		return nil
	case dburl.MisspeltPostgres:
		return usageErr("--db %q: a PostgreSQL URL starts postgres:// or postgresql://, in lower case", dburl.MisspeltPrefix(db))
	case dburl.OtherURL:
		scheme, _, _ := dburl.Scheme(db)
		return usageErr("--db %q: a URL of scheme %q: give a SQLite file or a postgres:// URL", dburl.Redact(db), scheme)
	case dburl.KeywordDSN:
		return usageErr("--db is a keyword/value connection string (host=... dbname=...), not a SQLite file: " +
			"give the database as a postgres:// URL, e.g. postgres://USER:PASSWORD@HOST/DBNAME?sslmode=verify-full")
	}
	return logPathUsable(db)
}

func openPostgres(ctx context.Context, url string, opts storeOptions, log *slog.Logger) (*logStore, error) {
	cfg := postgres.Config{URL: url, ReadOnly: opts.readOnly}
	if opts.onCommit != nil {
		cfg.OnCommit = func(st postgres.CommitStats) {
			opts.onCommit(commitStats{st.Appends, st.Failed, st.Events, st.Duration, st.Err, st.ClockBehind, st.RecordedAt})
		}
	}
	store, err := postgres.Open(ctx, cfg, log)
	if moved := movedRefusal(err, opts.name(), url); moved != nil {
		return nil, moved
	}
	if errors.Is(err, domain.ErrInvalidInput) || errors.Is(err, domain.ErrLogMoved) {
		return nil, usageErr("%s: %v", opts.name(), err)
	}
	if err != nil {
		return nil, err
	}
	return &logStore{
		EventStore: store, latest: store, close: store.Close, copier: store, sealed: store,
		stats: func(ctx context.Context) (StatsReport, error) {
			st, err := store.Stats(ctx)
			rep := StatsReport{Events: st.Events, Streams: st.Streams, LastPosition: st.LastPosition, FileBytes: st.Bytes}
			for _, t := range st.Totals {
				rep.Totals = append(rep.Totals, KindTotal{Kind: t.Kind, Type: t.Type, Events: t.Events})
			}
			return rep, err
		},
		writable: store.Ping,
	}, nil
}

func openSQLite(ctx context.Context, path string, opts storeOptions, log *slog.Logger) (*logStore, error) {
	created, err := newLogAt(path, opts.readOnly)
	if err != nil {
		return nil, err
	}
	cfg := sqlite.Config{Path: path, ReadOnly: opts.readOnly, OnCheckpoint: opts.onCheckpoint, BusyTimeout: opts.busyTimeout}
	if opts.onCommit != nil {
		cfg.OnCommit = func(st sqlite.CommitStats) {
			opts.onCommit(commitStats{st.Appends, st.Failed, st.Events, st.Duration, st.Err, st.ClockBehind, st.RecordedAt})
		}
	}
	store, err := sqlite.Open(ctx, cfg, log)
	if moved := movedRefusal(err, opts.name(), path); moved != nil {
		return nil, moved
	}
	if errors.Is(err, domain.ErrInvalidInput) || errors.Is(err, domain.ErrLogMoved) {
		// a file of tables but no event log, as PostgreSQL's; a log moved elsewhere
		return nil, usageErr("%s: %v", opts.name(), err)
	}
	if err != nil {
		return nil, err
	}
	if created != "" && log != nil {
		abs, _ := filepath.Abs(path)
		log.WarnContext(ctx, "created a new, empty event log ("+created+")", "path", abs, "log", store.LogID())
	}
	return &logStore{
		EventStore: store, latest: store, recent: store, close: store.Close, copier: store, sealed: store,
		stats: func(ctx context.Context) (StatsReport, error) {
			st, err := store.Stats(ctx)
			rep := StatsReport{Events: st.Events, Streams: st.Streams, LastPosition: st.LastPosition, FileBytes: st.FileBytes}
			for _, t := range st.Totals {
				rep.Totals = append(rep.Totals, KindTotal{Kind: t.Kind, Type: t.Type, Events: t.Events})
			}
			return rep, err
		},
		writable: store.Writable,
	}, nil
}

// movedRefusal is a command's refusal of a sealed log (exit 2), in the
// words every command uses: what names it (--db, SOURCE) and the log, then
// where the log went and when (logcopy.Moved.Message, the destination's
// password shown as xxxxx). It is nil when err is no such refusal.
func movedRefusal(err error, what, db string) error {
	var moved *logcopy.MovedError
	if !errors.As(err, &moved) {
		return nil
	}
	return usageErr("%s %s: %s", what, dburl.Redact(db), moved.Moved.Message())
}

// refuseSealed refuses a sealed log before serve listens, as movedRefusal
// words it (exit 2): serve listened and logged "starting" (answering 503
// starting) first, and refused only once the log was open. A log not made
// yet, or one it cannot look at within sealLookWait (a PostgreSQL log
// whose migrations another node holds, a database not answering), is
// left to the open, which serve does while it answers 503 starting.
func refuseSealed(ctx context.Context, db string) error {
	if !postgres.IsURL(db) {
		if info, err := os.Stat(db); err != nil || info.Size() == 0 {
			return nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, sealLookWait)
	defer cancel()
	store, err := openStore(ctx, db, storeOptions{readOnly: true, checked: true}, nil)
	if err != nil {
		return movedRefusal(err, "--db", db)
	}
	defer store.Close()
	if m, moved, err := store.Moved(ctx); err == nil && moved {
		return movedRefusal(m.Err(), "--db", db)
	}
	return nil
}

// sealLookWait is how long serve looks whether its log is sealed before
// it listens.
const sealLookWait = 2 * time.Second

// noteMoved says on stderr that the log a command reads is sealed: where it
// went and when, as the refusals say it. The command reads it as it was
// then. A failed look says nothing: the command's reads report the store.
func noteMoved(ctx context.Context, e env, store *logStore, db string) {
	if m, moved, err := store.Moved(ctx); err == nil && moved {
		fmt.Fprintf(e.stderr, "ledger: note: --db %s: %s; this reads the log as it was when it moved\n", dburl.Redact(db), m.Message())
	}
}

// noDatabase reports whether a PostgreSQL URL names no database: no path,
// no dbname parameter, no PGDATABASE. libpq then takes the user's name,
// and `--db postgres://` or `postgres://db-host` put a log into the
// database "postgres" or "root" the operator never named. One that does
// not parse is left to the store, which says why.
func noDatabase(db string) bool {
	u, err := neturl.Parse(db)
	if err != nil {
		return false
	}
	return strings.Trim(u.Path, "/") == "" && u.Query().Get("dbname") == "" && os.Getenv("PGDATABASE") == ""
}

// logPathUsable refuses a SQLite --db that can hold no log: a directory,
// a path under a regular file, or a file with something in it but no
// SQLite header (a CSV, a text file). SQLite's own errors for them ("disk I/O error: is a directory",
// "database file is corrupt: file is not a database") exited 1, as for a
// damaged log. An empty file is a new log (newLogAt); a missing one stays
// a failure (exit 1) for the commands that read: the relay may start
// before the server that creates it.
func logPathUsable(path string) error {
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, syscall.ENOTDIR): // "create directory: store unavailable", "pathwatch: stat …"
		return usageErr("--db %s: not a directory: a file on its path", path)
	case err != nil:
		return nil // opening it reports it
	case info.IsDir():
		return usageErr("--db %s: is a directory: give the path of a SQLite file or a postgres:// URL", path)
	case notSQLite(path):
		return usageErr("--db %s: not a SQLite database (no SQLite header): give the event log's file", path)
	}
	return nil
}

// notSQLite reports whether path is a regular file with something in it
// but no SQLite header: a CSV, a text file, never a log or a views file
// (an empty file is a new one).
func notSQLite(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular() && info.Size() > 0 && !isDatabase(path)
}

// viewsPath is the views file of a node: --views when given, else beside
// a SQLite log (<db>.views), else DefaultClusterViews.
func viewsPath(db, views string) string {
	switch {
	case views != "":
		return views
	case postgres.IsURL(db):
		return DefaultClusterViews
	}
	return projections.ViewsPath(db)
}

// newLogAt says why opening the SQLite log at path for writing creates a
// new, empty log ("" when it does not), and refuses to when its directory
// is missing too, except for the default path (a first `make run`). A
// missing data directory is more often a mistake than a first run: a data
// disk not mounted, a directory moved, a relative --db from another working
// directory. Creating it would serve an empty site and take writes into a
// log nobody backs up.
func newLogAt(path string, readOnly bool) (string, error) {
	if readOnly {
		return "", nil
	}
	if info, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		if err == nil && info.Mode().IsRegular() && holdsNoTable(path) {
			return "the file at the path held no table: a copy of a running server's log made without its -wal?", nil
		}
		return "", nil // there, or another error that opening reports
	}
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) && filepath.Clean(path) != filepath.Clean(DefaultDB) {
		return "", usageErr("--db %q: neither the log nor its directory %s exists (a data disk not mounted, a moved "+
			"directory, a relative path from another working directory?); to start a new log there, create the directory first", path, dir)
	}
	return "no file was at the path", nil
}

// holdsNoTable reports whether SQLite finds no table in the regular file at path:
// zero bytes, or a database whose schema cookie (header offset 40) is 0,
// with no -wal beside it. A copy of a running server's log made without
// its -wal is such a file (its first page, from before any table), and it
// was made a new log without a word.
func holdsNoTable(path string) bool {
	if info, err := os.Stat(path + "-wal"); err == nil && info.Size() > 0 {
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	header := make([]byte, 44)
	n, err := io.ReadFull(f, header)
	if n == 0 {
		return true
	}
	return err == nil && string(header[:16]) == "SQLite format 3\x00" && binary.BigEndian.Uint32(header[40:]) == 0
}
