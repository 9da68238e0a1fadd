package walcheckpoint

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/interactionledger/ledger/internal/sqlitedsn"
	"github.com/mattn/go-sqlite3"
)

// DisableAuto is the pragma a writer's connection runs when a
// Checkpointer checkpoints its file.
const DisableAuto = `PRAGMA wal_autocheckpoint = 0`

// Query is the checkpoint statement: PASSIVE never waits for a reader or
// a writer. Its one row holds busy, the frames in the WAL and the frames
// copied into the database file.
const Query = `PRAGMA wal_checkpoint(PASSIVE)`

// poll is how often a Checkpointer reads the WAL's headers.
const poll = 20 * time.Millisecond

// Finish runs Query while the file's writer cannot commit (typically on
// the writer's own connection, between its transactions, with Run) and
// returns the third column of its row: the frames of the WAL now copied.
type Finish func(ctx context.Context) (copied int64, err error)

// RowQuerier is *sql.DB, *sql.Conn or *sql.Tx.
type RowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Result is the row of a wal_checkpoint pragma: busy is non-zero when a
// connection kept it from finishing, frames is the WAL's size in frames and
// copied how many of them are in the database file.
type Result struct{ Busy, Frames, Copied int64 }

// Checkpoint runs PRAGMA wal_checkpoint(mode) on q: PASSIVE (Query) never
// waits; FULL waits (the busy timeout) for readers and writers; TRUNCATE
// also empties the WAL.
func Checkpoint(ctx context.Context, q RowQuerier, mode string) (Result, error) {
	var r Result
	err := q.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&r.Busy, &r.Frames, &r.Copied)
	return r, err
}

// Run runs Query on q and returns the frames of the WAL it found copied.
func Run(ctx context.Context, q RowQuerier) (copied int64, err error) {
	r, err := Checkpoint(ctx, q, "PASSIVE")
	return r.Copied, err
}

// Truncate copies every frame of the WAL into the database file and
// empties the WAL, waiting (the busy timeout) for readers and writers. It
// fails when a connection kept it from copying and emptying the whole WAL.
func Truncate(ctx context.Context, q RowQuerier) error {
	r, err := Checkpoint(ctx, q, "TRUNCATE")
	if err == nil && r.Busy != 0 {
		err = errors.New("wal_checkpoint(TRUNCATE): the WAL is in use by another connection")
	}
	return err
}

// Config is what Open needs besides the file.
type Config struct {
	// Pages is how many WAL frames past those already copied wait for a
	// checkpoint.
	Pages int64
	// Finish copies what is left on the writer's connection (see Finish).
	Finish Finish
	// Log receives failures; nil discards.
	Log *slog.Logger
	// OnCheckpoint, when set, is called after each checkpoint (its own
	// pass and the finish) with how long it took and its error, nil on
	// success; never for one interrupted by Close, or skipped because
	// another process's checkpointer held the file.
	OnCheckpoint func(took time.Duration, err error)
}

// Checkpointer checkpoints one SQLite file's WAL. Open it, Close it.
type Checkpointer struct {
	db   *sql.DB
	wal  string
	cfg  Config
	runs atomic.Int64

	// warned is when the last failure was logged, and what it said: the
	// same failure is logged at most once a minute (a full disk would
	// otherwise be logged at every poll).
	warned     time.Time
	warnedWhat string

	// salt names the WAL's generation (SQLite changes it each time it
	// writes the WAL from its start again); copied is how many of that
	// generation's frames the last Finish found copied.
	salt   uint64
	copied int64

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Open starts checkpointing the SQLite file at path (in WAL mode), whenever
// the WAL holds at least cfg.Pages frames past those already copied, each
// time followed by cfg.Finish. It checkpoints on a connection of its own,
// opened through driver with the writer's parameters q and mode=rw, so
// that it never creates a file where the file was (a moved log). It
// returns the error of that connection's opening (a missing file).
func Open(ctx context.Context, driver, path string, q url.Values, cfg Config) (*Checkpointer, error) {
	q = maps.Clone(q)
	if q == nil {
		q = url.Values{}
	}
	q.Set("mode", "rw")
	db, err := sql.Open(driver, sqlitedsn.File(path, q))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	if err := db.PingContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("open the WAL checkpointer of %s: %w", path, err), db.Close())
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	run, cancel := context.WithCancel(context.Background())
	c := &Checkpointer{db: db, wal: path + "-wal", cfg: cfg, cancel: cancel, done: make(chan struct{})}
	go c.run(run)
	return c, nil
}

// Runs returns how many checkpoints have completed (each of its own with
// the finish that follows it counts once).
func (c *Checkpointer) Runs() int64 { return c.runs.Load() }

// Close stops checkpointing (interrupting a checkpoint under way, which
// leaves the WAL whole) and closes the pool. It returns the pool's error;
// later calls return the first call's.
func (c *Checkpointer) Close() error {
	c.closeOnce.Do(func() {
		c.cancel()
		<-c.done
		c.closeErr = c.db.Close()
	})
	return c.closeErr
}

func (c *Checkpointer) run(ctx context.Context) {
	defer close(c.done)
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if c.due() {
			c.checkpoint(ctx)
		}
	}
}

// due reports whether the WAL's generation holds a frame pages past the
// ones the last finish found copied.
func (c *Checkpointer) due() bool {
	f, w, ok := openWAL(c.wal)
	if !ok {
		return false // no WAL: nothing to copy
	}
	defer f.Close()
	if w.salt != c.salt {
		c.salt, c.copied = w.salt, 0
	}
	return w.has(f, c.copied+c.cfg.Pages)
}

func (c *Checkpointer) checkpoint(ctx context.Context) {
	start := time.Now()
	_, err := c.db.ExecContext(ctx, Query)
	var copied int64
	if err == nil {
		copied, err = c.cfg.Finish(ctx)
	}
	switch {
	case err == nil:
		c.copied = copied
		c.runs.Add(1)
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		return
	case isBusy(err):
		// Another process's checkpointer holds the file's checkpoint lock;
		// the next poll tries again.
		c.cfg.Log.Debug("WAL checkpoint busy", "wal", c.wal)
		return
	default:
		if what := err.Error(); what != c.warnedWhat || time.Since(c.warned) >= time.Minute {
			c.cfg.Log.Warn("WAL checkpoint failed", "wal", c.wal, "err", err)
			c.warned, c.warnedWhat = time.Now(), what
		}
	}
	if c.cfg.OnCheckpoint != nil {
		c.cfg.OnCheckpoint(time.Since(start), err)
	}
}

// header is what a Checkpointer reads of the WAL's 32-byte header
// (https://www.sqlite.org/fileformat2.html#walformat, big-endian): the
// page size at offset 8 and the two salts at 16, which every frame of the
// current generation repeats at offset 8 of its 24-byte header.
type header struct {
	pageSize int64
	salt     uint64
}

// openWAL opens the WAL file at wal and reads its header; ok is false (and
// nothing is left open) when there is no header to read.
func openWAL(wal string) (*os.File, header, bool) {
	f, err := os.Open(wal)
	if err != nil {
		return nil, header{}, false
	}
	var b [32]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		f.Close()
		return nil, header{}, false
	}
	return f, header{pageSize: int64(binary.BigEndian.Uint32(b[8:])), salt: binary.BigEndian.Uint64(b[16:])}, true
}

// has reports whether frame n (from 1) is written and of this generation.
func (h header) has(f *os.File, n int64) bool {
	var b [8]byte
	off := 32 + (n-1)*(h.pageSize+24) + 8
	if _, err := f.ReadAt(b[:], off); err != nil {
		return false
	}
	return binary.BigEndian.Uint64(b[:]) == h.salt
}

// Generation returns the salts of the WAL file at wal, which SQLite
// changes each time it writes the WAL from its start again; ok is false
// when there is no WAL header to read.
func Generation(wal string) (salt uint64, ok bool) {
	f, h, ok := openWAL(wal)
	if !ok {
		return 0, false
	}
	f.Close()
	return h.salt, true
}

func isBusy(err error) bool {
	var e sqlite3.Error
	return errors.As(err, &e) && e.Code == sqlite3.ErrBusy
}
