package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/interactionledger/ledger/adapters/groupcommit"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/walcheckpoint"
)

// idempotencyTTL is how long idempotency records are kept; purgeEvery is
// how often the writer deletes older ones.
const (
	idempotencyTTL = 48 * time.Hour
	purgeEvery     = time.Hour
)

// writer owns the single write connection and its prepared statements. Only
// the writer goroutine (and Open, before it starts) uses it. Every
// statement of a transaction is prepared on the driver connection and runs
// on it, inside one sql.Conn.Raw for the whole transaction (withDriver),
// without database/sql's per-call wrappers: measured on an append that
// toggles a known stream with an idempotency key (an HTTP write), 64
// allocations fell to 46 and its CPU to 0.97x (BenchmarkToggle;
// docs/performance.md).
type writer struct {
	ctx  context.Context // never cancelled: a started transaction always finishes
	conn *sql.Conn

	// hot are the statements every append runs, shared with the raw
	// baselines; the others run on the driver connection the same way.
	hot                                                   hotStmts
	maxPosition, selectStream, insertStream, updateStream driver.Stmt
	deleteStream, insertIdempotency, selectIdempotency    driver.Stmt
	selectVersion, selectTail, savepoint, release         driver.Stmt
	rollbackTo, rollback, selectEvent                     driver.Stmt

	// tail is the store's: the streams after the index watermark, which
	// this writer publishes after each commit; created is the reused list
	// of the streams one transaction created.
	tail    *streamTail
	created []newStream

	// streams caches stream versions as of position last, stream key
	// lastKey and the target index's watermark through, which this writer
	// committed while the file's data version (PRAGMA data_version, which
	// only other connections' commits change) was version. A transaction
	// trusts them only while the data version is still version, i.e. no
	// other connection has written; last is -1 when they are not known.
	results                []result // reused by each commit
	streams                map[domain.StreamID]streamInfo
	last, lastKey, through int64
	version                int64
	// lastRecorded is the recorded_at (Unix ns) of the event at last.
	lastRecorded int64
	// reloaded: the last transaction begun did not trust the cache
	// (another connection had written, or a failure dropped it), so
	// what the store remembers of its own commits (recent) may no longer
	// be what the log holds at those positions.
	reloaded bool

	// indexEvery is Config.TargetIndexEvery.
	indexEvery int64
	// now is the clock events are recorded by (Config.now).
	now func() time.Time
}

// streamInfo is what the writer knows of a stream: its key (0 when new),
// version, last event's position and state.
type streamInfo struct {
	key, version, last int64
	state              domain.State
}

// maxCachedVersions bounds the writer's stream cache; it is dropped whole
// when full.
const maxCachedVersions = 1 << 18

// pageSize is the page size of new files; a file keeps the size it was
// created with. Measured: 1024 and 2048 append slower than 4096 (deeper
// trees cost more than the smaller WAL frames save; raw 256-row
// transactions 0.6x). 16384 lifts raw 1000-row transactions ~1.2-1.5x but
// the store's own appends at 256 appenders fall to 0.91x (4 paired runs).
const pageSize = 4096

const (
	sqlBegin       = `BEGIN IMMEDIATE`
	sqlCommit      = `COMMIT`
	sqlDataVersion = `PRAGMA data_version`
	sqlMaxPosition = `SELECT (SELECT coalesce(max(position), 0) FROM events),
		(SELECT coalesce(max(stream_key), 0) FROM streams),
		(SELECT through FROM stream_targets_through),
		(SELECT coalesce((SELECT recorded_at FROM events ORDER BY position DESC LIMIT 1), 0))`
	sqlSelectStream = `SELECT s.stream_key, s.version, s.last_position, s.state FROM stream_users u CROSS JOIN streams s
		ON s.stream_key = u.stream_key WHERE u.user_id = ? AND u.target_type = ? AND u.target_id = ?`
	sqlSelectEvent   = `SELECT 1 FROM events WHERE id = ?`
	sqlSelectVersion = `SELECT stream_key, version, last_position, state FROM streams WHERE stream_key = ?`
	sqlInsertStream  = `INSERT INTO streams (stream_key, user_id, target_type, target_id, version, last_position, state)
		VALUES (?, ?, ?, ?, ?, ?, ?)`
	// sqlInsertNewStream inserts the stream unless stream_users holds it;
	// the writer has looked in the tail first (createNew).
	sqlInsertNewStream = `INSERT INTO streams (stream_key, user_id, target_type, target_id, version, last_position, state)
		SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE NOT EXISTS
		(SELECT 1 FROM stream_users WHERE user_id = ?2 AND target_type = ?3 AND target_id = ?4)`
	sqlDeleteStream = `DELETE FROM streams WHERE stream_key = ?`
	sqlUpdateStream = `UPDATE streams SET version = ?, last_position = ?, state = ? WHERE stream_key = ?`
	sqlInsertEvent  = `INSERT INTO events
		(position, id, stream_key, stream_version, type, kind, occurred_at, recorded_at, metadata)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlInsertIdempotency = `INSERT INTO idempotency
		(user_id, key, request_hash, changed, active, state, stream_version, position, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlSelectIdempotency = `SELECT 1 FROM idempotency WHERE user_id = ? AND key = ?`
	sqlInsertTargets     = `INSERT INTO stream_targets (target_type, target_id, stream_key)
		SELECT target_type, target_id, stream_key FROM streams WHERE stream_key > ? AND stream_key <= ?
		ORDER BY target_type, target_id, stream_key`
	sqlInsertUsers = `INSERT INTO stream_users (user_id, target_type, target_id, stream_key)
		SELECT user_id, target_type, target_id, stream_key FROM streams WHERE stream_key > ? AND stream_key <= ?
		ORDER BY user_id, target_type, target_id`
	sqlSetThrough = `UPDATE stream_targets_through SET through = ?`
	// sqlTail reads the streams after the watermark (writer.reloadTail).
	sqlTail = `SELECT stream_key, user_id, target_type, target_id FROM streams WHERE stream_key > ?`
)

func newWriter(ctx context.Context, s *EventStore) (*writer, error) {
	conn, err := s.write.Conn(ctx)
	if err != nil {
		return nil, translate(err)
	}
	w := &writer{ctx: context.WithoutCancel(ctx), conn: conn, last: -1, indexEvery: int64(s.cfg.TargetIndexEvery),
		tail: &s.tail, now: s.cfg.now}
	if err := w.setup(ctx, s.log); err != nil {
		return w, err
	}
	if err := w.loadTail(); err != nil {
		return w, err
	}
	if err := w.purge(s.log); err != nil {
		return w, err
	}
	return w, nil
}

func (w *writer) setup(ctx context.Context, log *slog.Logger) error {
	// page_size only takes effect on a new, empty file, before WAL mode.
	if _, err := w.conn.ExecContext(ctx, "PRAGMA page_size = "+strconv.Itoa(pageSize)); err != nil {
		return translate(err)
	}
	var mode string
	if err := w.conn.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return translate(err)
	}
	if mode != "wal" {
		return fmt.Errorf("journal mode is %q, not wal: %w", mode, domain.ErrUnavailable)
	}
	if _, err := w.conn.ExecContext(ctx, walcheckpoint.DisableAuto); err != nil {
		return translate(err)
	}
	if err := migrate(ctx, w.conn, log); err != nil {
		return err
	}
	return w.conn.Raw(func(dc any) error {
		if err := w.hot.prepare(ctx, dc.(driver.Conn)); err != nil {
			return err
		}
		return prepareStmts(ctx, dc.(driver.Conn), []stmtSQL{
			{&w.maxPosition, sqlMaxPosition}, {&w.selectStream, sqlSelectStream},
			{&w.insertStream, sqlInsertStream}, {&w.updateStream, sqlUpdateStream},
			{&w.deleteStream, sqlDeleteStream}, {&w.insertIdempotency, sqlInsertIdempotency},
			{&w.selectIdempotency, sqlSelectIdempotency}, {&w.selectVersion, sqlSelectVersion},
			{&w.selectTail, sqlTail}, {&w.savepoint, `SAVEPOINT a`}, {&w.release, `RELEASE a`},
			{&w.rollbackTo, `ROLLBACK TO a`}, {&w.rollback, `ROLLBACK`}, {&w.selectEvent, sqlSelectEvent},
		})
	})
}

func (w *writer) close() error {
	err := w.conn.Raw(func(any) error {
		return errors.Join(w.hot.close(), closeStmts(w.maxPosition, w.selectStream, w.insertStream,
			w.updateStream, w.deleteStream, w.insertIdempotency, w.selectIdempotency, w.selectVersion,
			w.selectTail, w.savepoint, w.release, w.rollbackTo, w.rollback, w.selectEvent))
	})
	return errors.Join(err, w.conn.Close())
}

// withDriver runs fn holding the writer's driver connection, so that fn
// runs its statements (w.hot.exec, w.hot.query, w.hot.each) without a
// sql.Conn.Raw each. It returns fn's error, or the connection's when the
// writer's connection is closed.
func (w *writer) withDriver(fn func() error) error {
	return w.conn.Raw(func(any) error { return fn() })
}

// purge deletes idempotency records older than idempotencyTTL.
func (w *writer) purge(log *slog.Logger) error {
	cutoff := time.Now().Add(-idempotencyTTL).UnixNano()
	_, err := w.conn.ExecContext(w.ctx, `DELETE FROM idempotency WHERE created_at < ?`, cutoff)
	if err != nil {
		log.Warn("purging idempotency records failed", "err", err)
		return fmt.Errorf("purge idempotency records: %w", translate(err))
	}
	return nil
}

// run is the writer goroutine: it gathers queued appends into batches and
// commits them until Close, each under wmu.
func (s *EventStore) run() {
	defer close(s.done)
	answers := groupcommit.NewAnswerer[eventRow]()
	defer answers.Close() // before done closes: every taken append is answered
	purge := time.NewTicker(purgeEvery)
	defer purge.Stop()
	// A deleted WAL is saved when it is seen, not only at the next write:
	// a restart or a crash before that write would lose what it holds.
	watch := time.NewTicker(walWatchEvery)
	defer watch.Stop()
	batch := make([]*request, 0, s.cfg.MaxBatch)
	prev := 0
	for {
		select {
		case <-s.quit:
			s.queue.Drain()
			return
		default:
		}
		select {
		case r := <-s.queue.C():
			s.wmu.Lock()
			batch = s.commit(append(batch, r), s.queue.Linger(1, prev), answers)
			prev = len(batch)
			s.wmu.Unlock()
			clear(batch)
			batch = batch[:0]
		case <-purge.C:
			s.wmu.Lock()
			_ = s.w.purge(s.log)
			s.wmu.Unlock()
		case <-watch.C:
			s.wmu.Lock()
			_ = s.checkPath()
			s.wmu.Unlock()
		case <-s.quit:
			s.queue.Drain()
			return
		}
	}
}

// walWatchEvery is how often an idle writer checks that its WAL's path
// still names its WAL (checkPath, which saves a deleted one).
const walWatchEvery = 250 * time.Millisecond

// answerApartFrom is the smallest batch the writer hands to its answerer
// rather than answering itself: waking a few callers costs the writer
// less than the hand-off costs each of them (measured: handing over every
// batch cost the HTTP mix, ~2 appends a commit, 2-4 % more CPU a request).
const answerApartFrom = 64

// commit writes batch, and the appends l hands over while its transaction
// runs (none when l is nil), in one transaction, and answers every append
// in it that its caller has not cancelled: through answers when not nil
// and the batch is large (the writer goroutine, which then starts its next
// batch at once), else on this goroutine. It returns the appends it took,
// in batch's array. The caller holds wmu.
func (s *EventStore) commit(batch []*request, l *groupcommit.Linger[eventRow], answers *groupcommit.Answerer[eventRow]) []*request {
	taken := groupcommit.Take(batch)
	more := l.Take
	if len(taken) == 0 {
		r := more()
		if r == nil {
			return taken
		}
		taken = append(taken, r)
	}
	start := time.Now()
	taken, results, stats := s.commitChecked(taken, more)
	stats.Duration = time.Since(start)
	s.lastBatch.Store(int64(len(taken)))
	if stats.Err == nil {
		if s.w.reloaded {
			// Another connection wrote since the last commit: an older
			// copy of the log restored into the file (the sqlite3 shell's
			// .restore) reuses the positions held, and one grown again to
			// exactly the last of them would not be seen by add.
			s.recent.reset()
		}
		s.remember(taken, results)
		s.notifyCommitted()
		if stats.Events > 0 {
			// Only a commit that wrote an event ends a run of failures:
			// one of decided commands that changed nothing writes no page,
			// and commits on a full disk between two failed ones.
			s.failures.Succeeded()
		}
	} else {
		s.recent.reset()
		s.failures.Failed(stats.Err, "appends", len(taken))
	}
	if s.cfg.OnCommit != nil {
		s.cfg.OnCommit(stats)
	}
	if answers != nil && len(taken) >= answerApartFrom {
		answers.Answer(taken, results)
		return taken
	}
	for i, r := range taken {
		r.Answer(results[i])
	}
	return taken
}

// remember keeps a commit's events for AppendRecent, once someone has
// asked for them, before its commit is announced. The caller holds wmu.
func (s *EventStore) remember(batch []*request, results []result) {
	if !s.recent.wanted.Load() {
		return
	}
	events, ok := committedEvents(s.added[:0], batch, results)
	if ok {
		s.recent.add(events)
	} else {
		s.recent.reset()
	}
	clear(events)
	s.added = events[:0]
}

// commitChecked commits batch, and what more hands over meanwhile, only
// while the store's path names the file the writer opened, and
// acknowledges it only if it still does after the commit. SQLite goes on
// writing to an open file that was renamed or deleted, and a restart then
// reads whatever the path holds: a write acknowledged in between would be
// lost. It returns the appends committed (batch's array) and their
// results.
func (s *EventStore) commitChecked(batch []*request, more func() *request) ([]*request, []result, CommitStats) {
	if err := s.checkPath(); err != nil {
		results, stats := failAll(batch, err)
		return batch, results, stats
	}
	batch, results, stats := s.w.commit(batch, more)
	err := s.checkPath()
	if errors.Is(err, errWALGone) && s.walRescued {
		return batch, results, stats // committed to the deleted WAL, then copied into the file: durable
	}
	if err != nil && stats.Err == nil {
		results, stats = failAll(batch, err) // moved during the commit: not in the named file
	}
	return batch, results, stats
}

// checkPath is nil while the store's path still names the opened file,
// and its WAL's path the WAL the store writes: one non-blocking read of
// inotify watches on the paths while nothing has touched them
// (internal/pathwatch; measured: ~3 µs of CPU a commit less than the two
// os.Stat calls it replaced). A deleted WAL is saved first (walDeleted).
func (s *EventStore) checkPath() error {
	err := s.Intact()
	if errors.Is(err, errWALGone) {
		return s.walDeleted()
	}
	return err
}

// Intact returns the error a commit would now meet because the store's
// path no longer names the file it writes, or its WAL's path the WAL it
// writes (nil while both do, and for a read-only store); for /readyz.
func (s *EventStore) Intact() error {
	if s.watch == nil {
		return nil
	}
	changed, err := s.watch.Changed()
	switch changed {
	case "":
		return statFailed(err)
	case s.path:
		return errMoved(s.path)
	default:
		return errWALDeleted(s.path, "writes are refused until the server restarts")
	}
}

func errMoved(path string) error {
	return &storeError{msg: "sqlite: database file was moved or deleted",
		cause: fmt.Errorf("%s no longer names the open file", path), kind: domain.ErrUnavailable}
}

// statFailed is why a commit is refused while the store cannot tell what
// its paths name (a stat failing with EACCES or EIO, not a missing file):
// for now only, unlike a moved file or a deleted WAL. Nil when err is; err
// names the path.
func statFailed(err error) error {
	if err == nil {
		return nil
	}
	return &storeError{msg: "sqlite: cannot check that the database file and its WAL are still at their paths",
		cause: err, kind: domain.ErrUnavailable}
}

// errWALGone is in every error of a deleted WAL (errWALDeleted).
var errWALGone = errors.New("no longer names the WAL this server writes")

func errWALDeleted(path, state string) error {
	return &storeError{msg: "sqlite: the log's WAL file was deleted",
		cause: fmt.Errorf("%s-wal %w; %s", path, errWALGone, state), kind: domain.ErrUnavailable}
}

// walDeleted refuses a commit after the log's WAL file was deleted (or
// replaced) under the store. SQLite goes on writing to the WAL it has open,
// which no other process, and no restart, would read: every write since
// the last checkpoint was lost that way. So it first copies the open WAL's
// frames into the database file (once; PRAGMA wal_checkpoint(FULL), which
// waits for readers and syncs the file), then refuses writes until a
// restart makes a new WAL. The caller holds wmu.
func (s *EventStore) walDeleted() error {
	refuse := func(state string) error {
		return errWALDeleted(s.path, state+"; writes are refused until the server restarts")
	}
	if s.walRescued {
		return refuse("every acknowledged write was copied into the database file")
	}
	r, err := walcheckpoint.Checkpoint(s.w.ctx, s.w.conn, "FULL")
	if err != nil || r.Busy != 0 || r.Copied < r.Frames {
		s.log.Error("the log's WAL file was deleted; copying its frames into the database file failed, trying again at the next write: do not kill the server",
			"frames", r.Frames, "copied", r.Copied, "err", err)
		return refuse("its frames are not yet copied into the database file (do not kill the server: trying again)")
	}
	s.walRescued = true
	s.log.Error("the log's WAL file was deleted under the server: its frames were copied into the database file; writes are refused until a restart",
		"frames", r.Frames)
	return refuse("every acknowledged write was copied into the database file")
}

// failAll answers every append of a batch with err.
func failAll(batch []*request, err error) ([]result, CommitStats) {
	groupcommit.RolledBack(batch)
	results := make([]result, len(batch))
	for i := range results {
		results[i].Err = err
	}
	return results, CommitStats{Appends: len(batch), Err: err}
}

// commit runs one IMMEDIATE transaction for batch and for the appends
// more hands over while it runs (more returns nil when the batch is
// complete), and returns them all (batch's array, grown) with their
// results. Each append is checked before it writes anything, so a
// conflict fails it alone; only appends of several events, whose second
// insert could still fail, get a savepoint. When the transaction as a
// whole fails, every append gets its error.
func (w *writer) commit(batch []*request, more func() *request) ([]*request, []result, CommitStats) {
	var results []result
	var stats CommitStats
	err := w.withDriver(func() error {
		batch, results, stats = w.commitTx(batch, more)
		return nil
	})
	if err != nil { // the connection is closed: nothing ran
		w.streams, w.last = nil, -1
		results, stats = failAll(batch, fmt.Errorf("begin: %w", translate(err)))
	}
	return batch, results, stats
}

// commitTx is commit on the driver connection (withDriver).
func (w *writer) commitTx(batch []*request, more func() *request) ([]*request, []result, CommitStats) {
	var stats CommitStats
	results := w.results[:0]
	fail := func(err error) ([]*request, []result, CommitStats) {
		_, _ = w.hot.exec(w.ctx, w.rollback)
		w.streams, w.last = nil, -1
		groupcommit.RolledBack(batch)
		results := make([]result, len(batch))
		for i, r := range batch {
			results[i] = result{Err: fmt.Errorf("append %s: %w", r.Req.Stream, err)}
		}
		return batch, results, CommitStats{Appends: len(batch), Failed: len(batch), Err: err}
	}
	var tx txState
	if err := w.begin(&tx); err != nil {
		return fail(err)
	}
	tx.recordAt(w.now())
	for i := 0; ; i++ {
		if i == len(batch) {
			r := more()
			if r == nil {
				break
			}
			batch = append(batch, r)
		}
		r := batch[i]
		res, err := w.apply(&tx, r)
		if f := (*txFatal)(nil); errors.As(err, &f) {
			return fail(f.err)
		}
		r.Written(err)
		results = append(results, result{Res: res, Err: err})
		if err != nil {
			stats.Failed++
			continue
		}
		stats.Events += len(r.Rows)
	}
	w.results = results // keep the grown buffer for the next commit
	stats.Appends = len(batch)
	stats.ClockBehind, stats.RecordedAt = tx.behind, tx.recorded
	if err := w.indexStreams(&tx); err != nil {
		return fail(err)
	}
	if _, err := w.hot.exec(w.ctx, w.hot.commit); err != nil {
		return fail(fmt.Errorf("commit: %w", translate(err)))
	}
	w.last, w.lastKey, w.through, w.lastRecorded = tx.last, tx.lastKey, tx.through, tx.lastRecorded
	w.tail.publish(w.created, tx.lastKey, tx.through)
	return batch, results, stats
}

// indexStreams adds the streams after tx's watermark to the stream
// indexes once w.indexEvery of them wait, in the transaction about to
// commit: no fsync of its own, and rows sorted by each index's key fill
// few pages, where each new stream alone would dirty a random page of an
// index on streams. The watermark tx holds was read in this transaction,
// or is the one this writer committed while no other connection has
// written since.
func (w *writer) indexStreams(tx *txState) (err error) {
	tx.through, err = w.hot.indexStreams(w.ctx, tx.through, tx.lastKey, w.indexEvery)
	return err
}

// begin starts an IMMEDIATE transaction and finds where the log ends.
// When no other connection has written since this writer's last commit
// (the data version is unchanged), that is where the writer left it, and
// its stream cache and tail hold; otherwise it reads the log's end and the
// waiting streams again and drops the cache. The data version costs no
// B-tree search: measured, the lone appender's CPU per append fell by a
// tenth.
func (w *writer) begin(tx *txState) error {
	w.created = w.created[:0]
	version, err := w.beginVersion()
	if err != nil {
		return err
	}
	w.reloaded = !(w.last >= 0 && version == w.version && len(w.streams) <= maxCachedVersions)
	if !w.reloaded {
		tx.last, tx.lastKey, tx.through, tx.lastRecorded = w.last, w.lastKey, w.through, w.lastRecorded
		return nil
	}
	w.streams, w.last, w.version = make(map[domain.StreamID]streamInfo), -1, version
	if err := w.queryInt64s(w.maxPosition, nil, &tx.last, &tx.lastKey, &tx.through, &tx.lastRecorded); err != nil {
		return fmt.Errorf("the log's end: %w", translate(err))
	}
	return w.reloadTail(tx.through, tx.lastKey)
}

// reloadTail reads the streams after through into the tail, in the
// transaction that read through and last.
func (w *writer) reloadTail(through, last int64) error {
	keys := make(map[domain.StreamID]int64)
	dest := w.hot.dest[:4]
	err := w.hot.each(w.ctx, w.selectTail, dest, func() error {
		var key int64
		if err := int64s(dest[:1], &key); err != nil {
			return err
		}
		id, err := storedStreamID(dest[1], dest[2], dest[3])
		if err != nil {
			return domain.StoredError(fmt.Sprintf("stream %d: stored identity", key), err)
		}
		keys[id] = key
		return nil
	}, through)
	if err != nil {
		return fmt.Errorf("read the unindexed streams: %w", translate(err))
	}
	w.tail.replace(keys, through, last)
	return nil
}

// loadTail reads the unindexed streams at open, so that Snapshot finds
// them before the first append: begin in a transaction that writes
// nothing. What it read stands for the first commit too, while the data
// version holds, as if a commit had left it.
func (w *writer) loadTail() error {
	var tx txState
	return w.withDriver(func() error {
		err := w.begin(&tx)
		if _, rbErr := w.hot.exec(w.ctx, w.rollback); err == nil && rbErr != nil {
			err = fmt.Errorf("rollback: %w", translate(rbErr))
		}
		if err == nil {
			w.last, w.lastKey, w.through, w.lastRecorded = tx.last, tx.lastKey, tx.through, tx.lastRecorded
		}
		return err
	})
}

// beginVersion runs BEGIN IMMEDIATE and reads the file's data version.
func (w *writer) beginVersion() (version int64, err error) {
	if _, err := w.hot.exec(w.ctx, w.hot.begin); err != nil {
		return 0, fmt.Errorf("begin: %w", translate(err))
	}
	dest := w.hot.dest[:1]
	row, err := w.hot.query(w.ctx, w.hot.dataVersion, dest)
	if err != nil {
		return 0, fmt.Errorf("data version: %w", translate(err))
	}
	if !row {
		dest[0] = nil
	}
	if err := int64s(dest, &version); err != nil {
		return 0, fmt.Errorf("data version: %w", err)
	}
	return version, nil
}

// txState is what one transaction has assigned so far.
type txState struct {
	recorded     time.Time
	last         int64         // last event position
	lastKey      int64         // last stream key
	through      int64         // the target index's watermark
	lastRecorded int64         // the recorded_at of the event at last, Unix ns
	behind       time.Duration // how far now was behind lastRecorded (CommitStats.ClockBehind)
}

// recordAt sets the time the transaction's events are recorded at: now,
// read once the transaction holds the file's write lock, but never before
// the log's last event. Recorded times then follow positions, which a cut
// of the log by time (asof --time) needs, though the clock steps back
// (NTP) or another process on the file has a clock behind this one's.
func (tx *txState) recordAt(now time.Time) {
	if now.UnixNano() < tx.lastRecorded {
		tx.behind = time.Duration(tx.lastRecorded - now.UnixNano())
		now = time.Unix(0, tx.lastRecorded)
	}
	tx.recorded = now.UTC()
}

// txFatal marks a failure after which the transaction may hold part of an
// append (an I/O error, a full disk, a failed read): the batch must not
// commit. Other errors of an append are its own, and nothing of it is
// written.
type txFatal struct{ err error }

func (e *txFatal) Error() string { return e.err.Error() }
func (e *txFatal) Unwrap() error { return e.err }

func fatal(err error) error { return &txFatal{err: err} }

// apply runs one append: it finds or creates the stream's snapshot row,
// inserts the events, then writes the snapshot and the idempotency record.
// An error wrapping *txFatal means the transaction must not commit; any
// other error is the append's own.
func (w *writer) apply(tx *txState, r *request) (domain.AppendResult, error) {
	info, created, err := w.prepare(tx, r)
	if err != nil {
		return domain.AppendResult{}, err
	}
	if err := w.insertEvents(tx, r, info.key); err != nil {
		if created {
			// A duplicate event id: take the new stream's row out again.
			if _, delErr := w.hot.exec(w.ctx, w.deleteStream, info.key); delErr != nil {
				return domain.AppendResult{}, fatal(appendError(r.Req.Stream, delErr))
			}
		}
		return domain.AppendResult{}, err
	}
	if err := w.finish(tx, r, info, created); err != nil {
		return domain.AppendResult{}, fatal(err)
	}
	if r.Decide != nil && len(r.Rows) > 0 {
		r.Decided.Position = tx.last
	}
	return w.result(tx, r), nil
}

// prepare returns the stream's key and version before the append. The
// first event of a stream the cache does not know is appended without
// looking the stream up first: inserting its snapshot row finds out
// whether it exists, one statement instead of two on the most frequent
// append (measured: ~15 % more appends/s at 256 appenders); created then
// says the row is written. Otherwise the stream's version and the
// idempotency key are checked, and a new stream gets the next key.
func (w *writer) prepare(tx *txState, r *request) (info streamInfo, created bool, err error) {
	if r.Decide != nil {
		return w.prepareDecided(tx, r)
	}
	if created, err = w.createNew(tx, r); err != nil || created {
		return streamInfo{key: tx.lastKey + 1}, created, err
	}
	if info, err = w.check(r); err == nil && info.key == 0 {
		info.key = tx.lastKey + 1
	}
	return info, false, err
}

// prepareDecided is prepare for a decided request (r.Decide): it finds
// the stream as this transaction sees it, decides the command against it
// (Request.DecideAt), and leaves r an ordinary append at the stream's
// version, or one of no events when the command changes nothing. A command
// that turns a kind on for a stream the cache does not know, expecting
// any version or 0 (an import's first row of a pair), takes createNew's
// path first: r's candidate is then exactly its append.
func (w *writer) prepareDecided(tx *txState, r *request) (streamInfo, bool, error) {
	_, unwritten := r.FollowedEvent() // createNew's path does not check it
	if d := r.Decide; d.Command.On && (d.ExpectedVersion == nil || *d.ExpectedVersion == 0) && !unwritten {
		if created, err := w.createNew(tx, r); err != nil || created {
			if created {
				_, _ = r.DecideAt(domain.Snapshot{}, nil) // the candidate's own append, at the version expected
			}
			return streamInfo{key: tx.lastKey + 1}, created, err
		}
	}
	info, err := w.stream(r.Req.Stream)
	if err != nil {
		return info, false, err
	}
	// A recorded key comes before the expected version: the request that
	// recorded it (another process's, with the same key) may have moved
	// the stream past that version, and this retry of it is answered that
	// request's outcome (ErrIdempotencyKeyTaken, which Ledger.Set
	// replays), not a failed precondition.
	if err := w.checkKey(r); err != nil {
		return info, false, err
	}
	version, err := r.DecideAt(domain.Snapshot{Version: info.version, LastPosition: info.last, State: info.state}, w.stored)
	if err != nil {
		return info, false, err
	}
	if version > 0 {
		r.Rows[0].version = version
	}
	if info.key == 0 {
		info.key = tx.lastKey + 1
	}
	return info, false, nil
}

// stored reports whether an event with id is in the log, as the writer's
// transaction sees it (Request.DecideAt's check of Follows).
func (w *writer) stored(id uuid.UUID) (bool, error) {
	found, err := w.hot.query(w.ctx, w.selectEvent, nil, id[:])
	if err != nil {
		return false, fatal(fmt.Errorf("look up event %s: %w", id, translate(err)))
	}
	return found, nil
}

// createNew inserts the snapshot row of a one-event append at version 0,
// without idempotency, to a stream the cache does not know. It reports
// false, with nothing written, when the append does not qualify or the
// stream exists.
func (w *writer) createNew(tx *txState, r *request) (bool, error) {
	st := r.Req.Stream
	if len(r.Rows) != 1 || r.Req.ExpectedVersion != 0 || r.Req.Idempotency != nil {
		return false, nil
	}
	if _, cached := w.streams[st]; cached {
		return false, nil
	}
	if _, waiting := w.tail.key(st); waiting {
		return false, nil
	}
	n, err := w.hot.exec(w.ctx, w.hot.insertNewStream, tx.lastKey+1, st.User.String(),
		st.Target.Type(), st.Target.ID(), r.Rows[0].version, tx.last+1, r.Req.State.String())
	if err != nil {
		return false, fatal(appendError(st, err))
	}
	return n > 0, nil
}

// insertEvents inserts the append's events after tx's last position. An
// append of several events runs in a savepoint, so that a failure of its
// second insert leaves nothing of it. A constraint violation (a duplicate
// id) is the append's own error, and SQLite has undone just that statement
// (or the savepoint); any other failure may have ended the transaction.
func (w *writer) insertEvents(tx *txState, r *request, key int64) error {
	st := r.Req.Stream
	several := len(r.Rows) > 1
	if several {
		if _, err := w.hot.exec(w.ctx, w.savepoint); err != nil {
			return fatal(fmt.Errorf("savepoint: %w", translate(err)))
		}
	}
	err := w.insertRows(r, key, tx.last+1, tx.recorded.UnixNano())
	if several {
		if endErr := w.endSavepoint(err != nil); endErr != nil {
			return fatal(errors.Join(err, endErr))
		}
	}
	switch {
	case err == nil:
		return nil
	case isConstraint(err):
		return appendError(st, err)
	}
	return fatal(appendError(st, err))
}

// endSavepoint releases the savepoint of insertEvents, after rolling back
// to it when undo is set.
func (w *writer) endSavepoint(undo bool) error {
	if undo {
		if _, err := w.hot.exec(w.ctx, w.rollbackTo); err != nil {
			return fmt.Errorf("rollback to savepoint: %w", translate(err))
		}
	}
	if _, err := w.hot.exec(w.ctx, w.release); err != nil {
		return fmt.Errorf("release savepoint: %w", translate(err))
	}
	return nil
}

// check verifies the stream's version and the idempotency key without
// writing, and returns the stream's key (0 when new) and version. A failed
// read is fatal: the transaction may be gone.
func (w *writer) check(r *request) (streamInfo, error) {
	req := r.Req
	st := req.Stream
	info, err := w.stream(st)
	if err != nil {
		return info, err
	}
	if info.version != req.ExpectedVersion {
		return info, fmt.Errorf("append %s: at version %d, not %d: %w",
			st, info.version, req.ExpectedVersion, domain.ErrVersionConflict)
	}
	return info, w.checkKey(r)
}

// stream returns what the cache or, failing it, the log holds of st. A
// failed read is fatal: the transaction may be gone. A stored state that
// does not decode is the append's own error, as it is PostgreSQL's: the
// transaction is intact, and the other appends of its batch commit.
func (w *writer) stream(st domain.StreamID) (streamInfo, error) {
	info, ok := w.streams[st]
	if ok {
		return info, nil
	}
	state, err := w.lookup(st, &info)
	if err != nil {
		return info, fatal(appendError(st, err))
	}
	if info.state, err = domain.ParseStoredState(state); err != nil {
		return info, fmt.Errorf("append %s: %w", st, err)
	}
	return info, nil
}

// checkKey fails r when its idempotency key is recorded already. A failed
// read is fatal.
func (w *writer) checkKey(r *request) error {
	rec := r.Req.Idempotency
	if rec == nil {
		return nil
	}
	taken, err := w.hot.query(w.ctx, w.selectIdempotency, nil, rec.User.String(), rec.Key)
	switch {
	case err != nil:
		return fatal(appendError(r.Req.Stream, err))
	case taken:
		return fmt.Errorf("append %s: key %q: %w", r.Req.Stream, rec.Key, domain.ErrIdempotencyKeyTaken)
	}
	return nil
}

// lookup reads the key, version and last position of a stream the cache
// does not hold into info, leaving it zero for a new stream, and returns
// its stored state (State.String's form): by key when it waits in the
// tail, else through stream_users (the tail is complete while no other
// connection has written, which begin checked).
func (w *writer) lookup(st domain.StreamID, info *streamInfo) (state string, err error) {
	stmt, args := w.selectStream, []any{st.User.String(), st.Target.Type(), st.Target.ID()}
	if key, waiting := w.tail.key(st); waiting {
		stmt, args = w.selectVersion, []any{key}
	}
	dest := w.hot.dest[:4]
	defer clear(dest)
	row, err := w.hot.query(w.ctx, stmt, dest, args...)
	if err != nil || !row {
		return "", err
	}
	if err := int64s(dest[:3], &info.key, &info.version, &info.last); err != nil {
		return "", err
	}
	state, ok := dest[3].(string)
	if !ok {
		return "", fmt.Errorf("state column is %T, not text: %w", dest[3], domain.ErrUnavailable)
	}
	return state, nil
}

// queryInt64s runs stmt with args and reads its row's first columns into
// to; they are left as they are when it answers no row.
func (w *writer) queryInt64s(stmt driver.Stmt, args []any, to ...*int64) error {
	dest := w.hot.dest[:len(to)]
	row, err := w.hot.query(w.ctx, stmt, dest, args...)
	if err != nil || !row {
		return err
	}
	return int64s(dest, to...)
}

// finish writes the stream snapshot (unless prepare created it) and the
// idempotency record of an append whose events are in, and advances tx
// and the cache.
func (w *writer) finish(tx *txState, r *request, info streamInfo, created bool) error {
	n := int64(len(r.Rows))
	if n > 0 {
		last := tx.last + n
		if !created {
			if err := w.upsertStream(r, info, last); err != nil {
				return appendError(r.Req.Stream, err)
			}
		}
		w.advance(tx, r.Req.Stream, streamInfo{key: info.key, version: r.Rows[n-1].version, last: last, state: r.Req.State})
	}
	if rec := r.Req.Idempotency; rec != nil {
		var pos int64
		if n > 0 {
			pos = tx.last
		}
		if err := w.recordIdempotency(*rec, pos, tx.recorded); err != nil {
			return appendError(r.Req.Stream, err)
		}
	}
	return nil
}

// advance records an append written in tx: the transaction's last
// position and stream key, and the stream's key and version after it.
func (w *writer) advance(tx *txState, st domain.StreamID, after streamInfo) {
	tx.last, tx.lastRecorded = after.last, tx.recorded.UnixNano()
	if after.key > tx.lastKey {
		tx.lastKey = after.key
		w.created = append(w.created, newStream{id: st, key: after.key})
	}
	w.streams[st] = after
}

func (w *writer) result(tx *txState, r *request) domain.AppendResult {
	res := domain.AppendResult{RecordedAt: tx.recorded}
	if len(r.Rows) > 0 {
		res.LastPosition = tx.last
	}
	return res
}

// upsertStream stores the stream's new snapshot; info.version is the
// version before the append (0: the stream is new).
func (w *writer) upsertStream(r *request, info streamInfo, lastPosition int64) error {
	version := r.Rows[len(r.Rows)-1].version
	state := r.Req.State.String()
	if info.version != 0 {
		_, err := w.hot.exec(w.ctx, w.updateStream, version, lastPosition, state, info.key)
		return err
	}
	st := r.Req.Stream
	_, err := w.hot.exec(w.ctx, w.insertStream, info.key, st.User.String(), st.Target.Type(), st.Target.ID(),
		version, lastPosition, state)
	return err
}

// insertRows inserts r's events from position next on.
func (w *writer) insertRows(r *request, key, next int64, recorded int64) error {
	for i, e := range r.Rows {
		_, err := w.hot.query(w.ctx, w.hot.insertEvent, nil, next+int64(i), e.id, key, e.version,
			e.typ, e.kind, e.occurred, recorded, e.metadata)
		if err != nil {
			return err
		}
	}
	return nil
}

// recordIdempotency stores rec; lastPosition, when not 0, replaces the
// outcome's position, as domain.AppendRequest documents.
func (w *writer) recordIdempotency(rec domain.IdempotencyRecord, lastPosition int64, now time.Time) error {
	out := rec.Outcome
	if lastPosition != 0 {
		out.Position = lastPosition
	}
	created := rec.CreatedAt
	if created.IsZero() {
		created = now
	}
	_, err := w.hot.exec(w.ctx, w.insertIdempotency, rec.User.String(), rec.Key, rec.RequestHash,
		out.Changed, out.Active, out.State.String(), out.StreamVersion, out.Position, created.UnixNano())
	return err
}

// int64s reads integer columns into to, one each; a NULL or any other
// type is an error wrapping domain.ErrUnavailable.
func int64s(cols []driver.Value, to ...*int64) error {
	for i, p := range to {
		v, ok := cols[i].(int64)
		if !ok {
			return fmt.Errorf("column %d is %T, not an integer: %w", i+1, cols[i], domain.ErrUnavailable)
		}
		*p = v
	}
	return nil
}
