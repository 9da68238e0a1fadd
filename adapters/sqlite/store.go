package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/interactionledger/ledger/adapters/groupcommit"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/commitsignal"
	"github.com/interactionledger/ledger/internal/failurelog"
	"github.com/interactionledger/ledger/internal/migrations"
	"github.com/interactionledger/ledger/internal/pathwatch"
	"github.com/interactionledger/ledger/internal/sqlitedsn"
	"github.com/interactionledger/ledger/internal/walcheckpoint"
)

var _ domain.EventStore = (*EventStore)(nil)
var _ domain.LatestReader = (*EventStore)(nil)
var _ domain.QueueingStore = (*EventStore)(nil)

// driverName is go-sqlite3 with the log's connection settings that have no
// DSN parameter. Every connection to a log file opens through it: the
// store's, and the raw baselines' of benchload.go, so that a baseline
// measures the store's own settings.
const driverName = "sqlite3_ledger_log"

// walAutocheckpoint is how many WAL pages wait before a checkpoint (~40 MB
// at the log's 4 KiB pages) instead of SQLite's 1,000 (~4 MB). A group
// commit of a few hundred appends to new streams dirties several hundred
// random index pages, so at 1,000 pages every second or third commit also
// checkpointed: two more fsyncs and a write of each of those pages to the
// file. With 10,000 a checkpoint comes every few dozen commits and writes a
// page dirtied by many of them once. Measured in paired runs, see the
// README ("Appends at 256 appenders and the log layout's ceiling").
//
// The store's writer never checkpoints inside a commit: its connection
// runs walcheckpoint.DisableAuto and a walcheckpoint.Checkpointer takes the
// same threshold on a connection of its own (so do the raw baselines'
// connections). Any other connection that writes the file checkpoints
// inline at this threshold, as the driver registers it. Durability is the
// same: every commit still syncs the WAL.
const walAutocheckpoint = 10_000

func init() {
	sqlitedsn.Register(driverName, "PRAGMA wal_autocheckpoint = "+strconv.Itoa(walAutocheckpoint))
}

// EventStore is domain.EventStore on a SQLite file. It is safe for
// concurrent use. Concurrent appends are group-committed by one writer
// goroutine; a lone appender commits on its own goroutine while the writer
// is idle. Reads use a pool of read-only connections and never wait for the
// writer.
type EventStore struct {
	cfg  Config
	log  *slog.Logger
	path string
	// watch watches that the store's path still names the file the
	// writer opened, and its WAL's path the WAL it writes (checkPath); nil
	// when opened read-only. walRescued is set, under wmu, once a deleted
	// WAL's frames are copied into the file.
	watch      *pathwatch.Watch
	walRescued bool
	// opened watches that a read-only store's path still names the file
	// its connections read (LastPosition); nil when writable.
	opened *pathwatch.Watch
	read   *sql.DB

	// Write side; nil when opened read-only.
	write *sql.DB
	w     *writer
	ckpt  *walcheckpoint.Checkpointer
	queue *groupcommit.Queue[eventRow]
	edge  groupcommit.Edge[eventRow] // Append and Decide
	// wmu is held by whoever runs a transaction on the writer's
	// connection: the writer goroutine, or a lone appender committing its
	// own append (appendDirect).
	wmu sync.Mutex
	// one is a lone appender's batch, used under wmu.
	one [1]*request
	// recent holds the latest committed events (AppendRecent); added is
	// the writer's reused buffer for one commit's events, used under wmu.
	recent recent
	added  []domain.Event
	// tail is the streams after the stream indexes' watermark, kept by the
	// writer for Snapshot (empty in a read-only store).
	tail streamTail
	// lastBatch is the number of appends in the last commit.
	lastBatch atomic.Int64
	quit      chan struct{} // closed by Close
	done      chan struct{} // closed when the writer has exited

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	committed *commitsignal.Signal
	// failures logs failed group commits without flooding.
	failures *failurelog.Log
	// logID is the log's identity (LogID), read once by Open.
	logID string
}

// Open opens (creating if missing) the store at cfg.Path, applies the
// embedded migrations and starts the writer, unless cfg.ReadOnly. A nil log
// discards. It returns an error wrapping domain.ErrInvalidInput for a bad
// Config, domain.ErrNotFound when a read-only store's file is missing,
// domain.ErrLogMoved when a writable store's log moved to another store
// (ledger import log), and domain.ErrUnavailable when the file cannot be
// opened or written.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*EventStore, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	path, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", cfg.Path, err)
	}
	s := &EventStore{cfg: cfg, log: log, path: path, committed: commitsignal.New(), failures: &failurelog.Log{Logger: log, What: "group commit", Level: slog.LevelError}}
	if cfg.ReadOnly {
		err = s.openReadOnly(ctx)
	} else {
		err = s.openWritable(ctx)
	}
	if err == nil {
		err = s.readLogID(ctx)
	}
	if err == nil && !cfg.ReadOnly {
		err = s.refuseMoved(ctx)
	}
	if err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("open %s: %w", cfg.Path, err)
	}
	s.edge = s.newEdge()
	return s, nil
}

// readLogID reads the log's identity (migration 0004).
func (s *EventStore) readLogID(ctx context.Context) error {
	if err := s.read.QueryRowContext(ctx, `SELECT id FROM log_identity`).Scan(&s.logID); err != nil {
		return fmt.Errorf("read the log's identity: %w", translate(err))
	}
	return nil
}

// refuseMoved fails a writable open of a sealed log (logcopy.Moved.Err):
// its writes would fail, and a server on it would take none.
func (s *EventStore) refuseMoved(ctx context.Context) error {
	m, moved, err := movedIn(ctx, s.read)
	if err == nil && moved {
		err = m.Err()
	}
	return err
}

// LogID is the log's identity (domain.Identified), kept by copies of the
// file.
func (s *EventStore) LogID() string { return s.logID }

// OpenReadOnly opens an existing store for reads only, e.g. a file a server
// is writing. Append fails with domain.ErrUnavailable. It returns
// domain.ErrNotFound when the file is missing and domain.ErrUnavailable when
// it cannot be read or its schema is not the one this build knows.
func OpenReadOnly(ctx context.Context, path string, log *slog.Logger) (*EventStore, error) {
	return Open(ctx, Config{Path: path, ReadOnly: true}, log)
}

func (s *EventStore) openWritable(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o755); err != nil {
		return fmt.Errorf("create directory: %w: %w", domain.ErrUnavailable, err)
	}
	db, err := sql.Open(driverName, s.dsn(false))
	if err != nil {
		return err
	}
	s.write = db
	s.write.SetMaxOpenConns(1)
	s.write.SetMaxIdleConns(1)
	w, err := newWriter(ctx, s)
	if w != nil {
		s.w = w // closed by closeDBs even when setting it up failed
	}
	if err != nil {
		return err
	}
	if err := s.openReadPool(ctx); err != nil {
		return err
	}
	s.ckpt, err = walcheckpoint.Open(ctx, driverName, s.path, s.cfg.params(false), walcheckpoint.Config{
		Pages: s.cfg.checkpointPages, Finish: s.finishCheckpoint, Log: s.log, OnCheckpoint: s.cfg.OnCheckpoint})
	if err != nil {
		return err
	}
	if s.watch, err = pathwatch.New(s.path, filepath.Base(s.path)+"-wal"); err != nil {
		return fmt.Errorf("watch the event log's path: %w", err)
	}
	s.quit = make(chan struct{})
	s.queue = groupcommit.NewQueue[eventRow](s.cfg.MaxBatch, s.cfg.MaxDelay, s.quit)
	s.done = make(chan struct{})
	go s.run()
	return nil
}

// finishCheckpoint is the store's walcheckpoint.Finish (see
// walAutocheckpoint): it runs under wmu,
// so no commit of this process runs meanwhile.
func (s *EventStore) finishCheckpoint(ctx context.Context) (int64, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed.Load() {
		return 0, nil
	}
	return walcheckpoint.Run(ctx, s.w.conn)
}

func (s *EventStore) openReadOnly(ctx context.Context) error {
	if _, err := os.Stat(s.path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w", domain.ErrNotFound, err)
	}
	// Watched before the first connection opens the file, so that a file
	// replaced meanwhile is reported rather than read as this one.
	var err error
	if s.opened, err = pathwatch.New(s.path); err != nil {
		return fmt.Errorf("watch the event log's path: %w", err)
	}
	if err := s.openReadPool(ctx); err != nil {
		return err
	}
	want, err := latestVersion()
	if err != nil {
		return err
	}
	got, err := schemaVersion(ctx, s.read)
	if err != nil {
		return fmt.Errorf("read schema version: %w", noLogIn(ctx, s.read, translate(err)))
	}
	if got != want {
		return fmt.Errorf("schema version %d, this build reads %d%s: %w", got, want, migrations.Remedy(got, want), domain.ErrUnavailable)
	}
	return nil
}

// noLogIn says what a file is whose schema version could not be read
// (err): one with tables but no log (holdsALog), or one with no table (an
// empty file, a copy of a running server's log made without its -wal).
// Readers said only "no such table: schema_migrations".
func noLogIn(ctx context.Context, db queryer, err error) error {
	if notLog := holdsALog(ctx, db); notLog != nil {
		return notLog
	}
	var tables int
	if db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table'`).Scan(&tables) == nil && tables == 0 {
		return fmt.Errorf("the file holds no table, so no event log: an empty file, or a copy of a running server's log made without its -wal: %w",
			domain.ErrNotFound)
	}
	return err
}

func (s *EventStore) openReadPool(ctx context.Context) error {
	db, err := sql.Open(driverName, s.dsn(true))
	if err != nil {
		return err
	}
	s.read = db
	n := max(4, runtime.GOMAXPROCS(0))
	s.read.SetMaxOpenConns(n)
	s.read.SetMaxIdleConns(n)
	if err := s.read.PingContext(ctx); err != nil {
		return translate(err)
	}
	return nil
}

// dsn builds the driver's data source name. Readers open with mode=ro so
// that no read path can ever write the log.
func (s *EventStore) dsn(readOnly bool) string { return sqlitedsn.File(s.path, s.cfg.params(readOnly)) }

// params is the connection parameters of a store with this config (dsn,
// and the raw baselines of benchload.go).
func (c Config) params(readOnly bool) url.Values {
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(c.BusyTimeout.Milliseconds(), 10))
	// The read paths (snapshots on every write, the tailer's reads) run a
	// few constant statements over and over: keep them prepared.
	q.Set("_stmt_cache_size", "32")
	if readOnly {
		q.Set("mode", "ro")
		q.Set("_query_only", "1")
	} else {
		q.Set("_txlock", "immediate")
		q.Set("_synchronous", c.Synchronous)
		q.Set("_foreign_keys", "1")
	}
	return q
}

// Close stops the writer after answering every append it has started and
// failing every queued one with domain.ErrClosed, then closes the
// connections. It is safe to call more than once; later calls return the
// first call's result.
func (s *EventStore) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		defer s.committed.End() // tailers waiting for a commit wake and find the store closed
		if s.ckpt != nil {
			_ = s.ckpt.Close() // before wmu, which its finish takes; closeDBs reports its error
		}
		if s.quit != nil {
			close(s.quit)
			<-s.done
		}
		s.wmu.Lock() // a lone appender's transaction finishes first
		defer s.wmu.Unlock()
		if s.w != nil && s.watch != nil {
			_ = s.checkPath() // a WAL deleted since the last look is saved before it is closed
			s.truncateWAL()
		}
		s.closeErr = s.closeDBs()
	})
	return s.closeErr
}

// truncateWAL copies the whole WAL into the file and empties it, so that
// the file alone holds the log once the store is closed (a copy of it is a
// backup): the read pool's connections, closed last, are read-only and
// cannot checkpoint as they close. It runs under wmu with the writer
// stopped, so no commit runs meanwhile. Best effort: another process
// reading the file may keep it from finishing.
func (s *EventStore) truncateWAL() {
	if err := walcheckpoint.Truncate(s.w.ctx, s.w.conn); err != nil {
		// A reader of this or another process held the WAL: the file
		// alone is not the whole log until the next checkpoint.
		s.log.Warn("the log's WAL could not be copied into the file at close (a reader held it): a copy of the file needs its -wal too",
			"path", s.path, "err", err)
	}
}

func (s *EventStore) closeDBs() error {
	var errs []error
	if s.ckpt != nil {
		errs = append(errs, s.ckpt.Close())
	}
	for _, w := range []*pathwatch.Watch{s.watch, s.opened} {
		if w != nil {
			errs = append(errs, w.Close())
		}
	}
	if s.w != nil {
		errs = append(errs, s.w.close())
	}
	for _, db := range []*sql.DB{s.write, s.read} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	return errors.Join(errs...)
}

// Committed returns a channel closed at the next commit by this process's
// writer; commits by other processes (and a read-only store) never close
// it, so readers of a shared file poll as well. After Close it is closed
// for good.
func (s *EventStore) Committed() <-chan struct{} { return s.committed.Wait() }

func (s *EventStore) notifyCommitted() { s.committed.Notify() }
