package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"strings"

	"github.com/google/uuid"

	"github.com/interactionledger/ledger/adapters/eventcodec"
	"github.com/interactionledger/ledger/domain"
)

// The columns every event read selects, in scanner order.
const eventColumns = `e.position, e.id, e.stream_key, e.stream_version, e.type, e.kind,
	e.occurred_at, e.recorded_at, e.metadata, s.user_id, s.target_type, s.target_id`

// The snapshot reads. A stream is found by its key when the writer's tail
// holds it (streamTail), else in stream_users (the streams up to the index
// watermark) or among the streams after both the watermark and the last
// key the tail covers (?4): none, unless another process has appended
// since. A stream leaves the tail only after the commit that indexed it,
// so the tail and the index read after it never both miss it.
const (
	sqlSnapshotByKey = `SELECT version, last_position, state FROM streams WHERE stream_key = ?`
	sqlSnapshot      = `SELECT version, last_position, state FROM streams WHERE stream_key IN
		(SELECT stream_key FROM stream_users WHERE user_id = ?1 AND target_type = ?2 AND target_id = ?3
		 UNION ALL SELECT stream_key FROM streams
		 WHERE stream_key > max(?4, (SELECT through FROM stream_targets_through))
		 AND user_id = ?1 AND target_type = ?2 AND target_id = ?3)`
)

// Snapshot returns the stream's stored snapshot, the zero Snapshot for an
// unknown stream. It returns domain.ErrUnavailable on storage faults and
// domain.ErrClosed after Close.
func (s *EventStore) Snapshot(ctx context.Context, stream domain.StreamID) (domain.Snapshot, error) {
	if err := s.usable(); err != nil {
		return domain.Snapshot{}, err
	}
	if err := ctx.Err(); err != nil {
		return domain.Snapshot{}, fmt.Errorf("snapshot %s: %w", stream, err)
	}
	// One row by key: under a context that can end, database/sql would
	// watch the read with a goroutine of its own.
	ctx = context.WithoutCancel(ctx)
	var snap domain.Snapshot
	var state string
	var row *sql.Row
	if key, waiting, last := s.tail.lookup(stream); waiting {
		row = s.read.QueryRowContext(ctx, sqlSnapshotByKey, key)
	} else {
		row = s.read.QueryRowContext(ctx, sqlSnapshot,
			stream.User.String(), stream.Target.Type(), stream.Target.ID(), last)
	}
	err := row.Scan(&snap.Version, &snap.LastPosition, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Snapshot{}, nil
	}
	if err != nil {
		return domain.Snapshot{}, fmt.Errorf("snapshot %s: %w", stream, s.readError(err))
	}
	if snap.State, err = domain.ParseStoredState(state); err != nil {
		return domain.Snapshot{}, fmt.Errorf("snapshot %s: %w", stream, err)
	}
	return snap, nil
}

// Idempotency returns the record stored for (user, key) and whether there
// is one. It returns domain.ErrUnavailable on storage faults and
// domain.ErrClosed after Close.
func (s *EventStore) Idempotency(ctx context.Context, user domain.UserID, key string) (domain.IdempotencyRecord, bool, error) {
	if err := s.usable(); err != nil {
		return domain.IdempotencyRecord{}, false, err
	}
	if err := ctx.Err(); err != nil {
		return domain.IdempotencyRecord{}, false, fmt.Errorf("idempotency %s: %w", user, err)
	}
	rec := domain.IdempotencyRecord{User: user, Key: key}
	var state string
	var created int64
	// One row by key, as Snapshot's: without a goroutine watching ctx.
	err := s.read.QueryRowContext(context.WithoutCancel(ctx),
		`SELECT request_hash, changed, active, state, stream_version, position, created_at
		 FROM idempotency WHERE user_id = ? AND key = ?`, user.String(), key).
		Scan(&rec.RequestHash, &rec.Outcome.Changed, &rec.Outcome.Active, &state,
			&rec.Outcome.StreamVersion, &rec.Outcome.Position, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.IdempotencyRecord{}, false, nil
	}
	if err != nil {
		return domain.IdempotencyRecord{}, false, fmt.Errorf("idempotency %s: %w", user, s.readError(err))
	}
	if rec.Outcome.State, err = domain.ParseStoredState(state); err != nil {
		return domain.IdempotencyRecord{}, false, fmt.Errorf("idempotency %s: %w", user, err)
	}
	rec.CreatedAt = unixNano(created)
	return rec, true, nil
}

// HasEvent reports whether an event with id is stored. It returns
// domain.ErrUnavailable on storage faults and domain.ErrClosed after Close.
func (s *EventStore) HasEvent(ctx context.Context, id uuid.UUID) (bool, error) {
	if err := s.usable(); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("has event %s: %w", id, err)
	}
	var one int
	// One row by key, as Snapshot's: without a goroutine watching ctx.
	err := s.read.QueryRowContext(context.WithoutCancel(ctx), `SELECT 1 FROM events WHERE id = ?`, id[:]).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("has event %s: %w", id, s.readError(err))
	}
	return true, nil
}

// LastPosition returns the position of the newest committed event, 0 for
// an empty log. It returns domain.ErrUnavailable on storage faults,
// domain.ErrClosed after Close, and domain.ErrLogReplaced (an
// ErrUnavailable) when a read-only store's path names another file than
// the one it opened (ReadEvents too).
func (s *EventStore) LastPosition(ctx context.Context) (int64, error) {
	if err := s.usable(); err != nil {
		return 0, err
	}
	if err := s.sameFile(); err != nil {
		return 0, fmt.Errorf("last position: %w", err)
	}
	var pos int64
	if err := s.read.QueryRowContext(ctx, `SELECT coalesce(max(position), 0) FROM events`).Scan(&pos); err != nil {
		return 0, fmt.Errorf("last position: %w", translate(err))
	}
	return pos, nil
}

// ReadEvents yields each event matching f, in position order, one row at a
// time (domain.EventReader). A failure ends the sequence with
// domain.ErrUnavailable on storage faults, domain.ErrClosed after Close, or
// ctx's error.
func (s *EventStore) ReadEvents(ctx context.Context, f domain.EventFilter) iter.Seq2[domain.Event, error] {
	return domain.Emitting("read events", func(emit func(domain.Event) bool) error {
		if err := s.usable(); err != nil {
			return err
		}
		// A new connection of the pool would open the file now at the path.
		if err := s.sameFile(); err != nil {
			return err
		}
		if err := f.Validate(); err != nil {
			return err
		}
		if f.Limit > 0 && streamFiltered(f) {
			return s.readPage(ctx, f, emit)
		}
		q, args := eventQuery(f)
		return s.runRead(ctx, q, args, f.Limit, emit)
	})
}

// runRead runs q, which reads up to limit events (0: every event), on one
// goroutine, or on two for a long read (readParallel).
func (s *EventStore) runRead(ctx context.Context, q string, args []any, limit int, emit func(domain.Event) bool) error {
	if traceRead != nil {
		traceRead(q, args)
	}
	if limit == 0 || limit > chunkRows {
		return s.readParallel(ctx, q, args, emit)
	}
	return s.query(ctx, q, args, emit)
}

// traceRead, when set (tests), sees every statement runRead runs.
var traceRead func(q string, args []any)

// manyStreams is how many streams a user's or target's filter selects at
// least when readPage scans the log for a page of it; scanBudget how many
// times the page's limit it scans, at most, before it reads the rest of
// the page through the stream index.
const (
	manyStreams = 1024
	scanBudget  = 64
)

// readPage reads a page (f.Limit events) of the events of a user's or a
// target's streams. Through the stream index (eventQuery) SQLite reads
// every event of those streams and sorts them all for each page: a page
// of a target liked 600,000 times took 360 ms, and its NDJSON export,
// read a page after another, 115 s (the whole log's 11 s). A filter that
// selects many streams is read first by scanning the log by position from
// the page's start, in windows that grow to scanBudget times the limit,
// never past the log's head as read before them (the page is then a
// prefix of the log, whatever is appended meanwhile): a popular user or
// target fills its page after a few times its limit of events. What the
// windows leave of the page is read through the index, so a page costs
// at most that scan more than it did.
func (s *EventStore) readPage(ctx context.Context, f domain.EventFilter, emit func(domain.Event) bool) error {
	keys, keyArgs := streamKeys(f)
	var streams, head int64
	err := s.read.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM (SELECT 1 FROM `+keys+` LIMIT ?)),
	(SELECT coalesce(max(position), 0) FROM events)`, append(keyArgs, manyStreams)...).Scan(&streams, &head)
	if err != nil {
		return translateCtx(ctx, err)
	}
	stopped := false
	counted := func(e domain.Event) bool {
		f.Limit--
		f.After = e.Position
		stopped = !emit(e)
		return !stopped
	}
	if streams == manyStreams {
		w, left := 4*int64(f.Limit), scanBudget*int64(f.Limit)
		for ; left > 0 && f.After < head; w = min(4*w, left) {
			from, through := f.After, min(f.After+w, head)
			q, args := windowQuery(f, through)
			if err := s.runRead(ctx, q, args, f.Limit, counted); err != nil || stopped || f.Limit == 0 {
				return err
			}
			// The window's whole span, from where it began: counted moved
			// f.After to the last event it emitted.
			left -= through - from
			f.After = through
		}
		if f.After >= head {
			return nil
		}
	}
	q, args := eventQuery(f)
	return s.runRead(ctx, q, args, f.Limit, counted)
}

// streamFiltered reports whether f selects events by their streams.
func streamFiltered(f domain.EventFilter) bool {
	return !f.User.IsZero() || f.TargetType != "" || f.TargetID != ""
}

// eventQuery builds the query for f. Without stream filters the log is
// scanned in rowid order with each row's stream looked up by primary key
// (CROSS JOIN fixes that loop order); with a user or a target, it starts
// from the keys of their streams (streamKeys).
func eventQuery(f domain.EventFilter) (string, []any) {
	var where conds
	join := scanJoin
	if streamFiltered(f) {
		join = "streams s CROSS JOIN events e ON e.stream_key = s.stream_key"
		keys, args := streamKeys(f)
		where.add("s.stream_key IN "+keys, args...)
	}
	return selectEvents(join, where, f)
}

// scanJoin reads the log in rowid order and each row's stream by its
// primary key.
const scanJoin = "events e CROSS JOIN streams s ON s.stream_key = e.stream_key"

// windowQuery builds the query for f's events up to position through, by
// scanning the log in rowid order from f.After and keeping the rows whose
// stream f selects.
func windowQuery(f domain.EventFilter, through int64) (string, []any) {
	var where conds
	where.add("e.position <= ?", through)
	if !f.User.IsZero() {
		where.add("s.user_id = ?", f.User.String())
	}
	where.target(f)
	return selectEvents(scanJoin, where, f)
}

// selectEvents adds f's position, kind and time filters and its limit to
// where, and returns the statement that reads join's events in position
// order.
func selectEvents(join string, where conds, f domain.EventFilter) (string, []any) {
	where.add("e.position > ?", f.After)
	if !f.Kind.IsZero() {
		where.add("e.kind = ?", f.Kind.String())
	}
	since, hasSince, until, hasUntil := f.OccurredNanos()
	if hasSince {
		where.add("e.occurred_at >= ?", since)
	}
	if hasUntil {
		where.add("e.occurred_at < ?", until)
	}
	args := append(where.args, sqlLimit(f.Limit))
	return `SELECT ` + eventColumns + ` FROM ` + join + ` WHERE ` + where.and() +
		` ORDER BY e.position LIMIT ?`, args
}

// streamKeys is a subquery of the keys of the streams of f's user and
// target, and its arguments: those in a stream index up to its watermark
// (stream_users when f names a user, else stream_targets), and those
// after it, which wait to be indexed (at most about
// Config.TargetIndexEvery), read by a range of the streams' rowids. Both
// halves are read in one statement, so from one snapshot: a stream is in
// exactly one of them. As an IN list SQLite collects the few keys first
// and then reads their events (measured: ~0.1 ms less a page than the
// union joined, whose halves it sorted apart and merged).
func streamKeys(f domain.EventFilter) (string, []any) {
	index := "stream_targets"
	var indexed, waiting conds
	waiting.add("stream_key > (SELECT through FROM stream_targets_through)")
	if !f.User.IsZero() {
		index = "stream_users"
		indexed.add("user_id = ?", f.User.String())
		waiting.add("user_id = ?", f.User.String())
	}
	indexed.target(f)
	waiting.target(f)
	return `(SELECT stream_key FROM ` + index + ` WHERE ` + indexed.and() +
			` UNION ALL SELECT stream_key FROM streams WHERE ` + waiting.and() + `)`,
		append(indexed.args, waiting.args...)
}

// conds are the conditions of a WHERE clause and their arguments.
type conds struct {
	where []string
	args  []any
}

func (c *conds) add(cond string, args ...any) {
	c.where = append(c.where, cond)
	c.args = append(c.args, args...)
}

// target adds f's target filters.
func (c *conds) target(f domain.EventFilter) {
	if f.TargetType != "" {
		c.add("target_type = ?", f.TargetType)
	}
	if f.TargetID != "" {
		c.add("target_id = ?", f.TargetID)
	}
}

func (c *conds) and() string { return strings.Join(c.where, " AND ") }

// sqlLimit maps "0: no limit" to SQLite's -1.
func sqlLimit(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}

// query runs q on the read pool and emits each decoded event until emit
// returns false.
func (s *EventStore) query(ctx context.Context, q string, args []any, emit func(domain.Event) bool) error {
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return translateCtx(ctx, err)
	}
	defer rows.Close()
	var dec eventcodec.RowDecoder
	var r eventcodec.Row
	for rows.Next() {
		if err := scanRow(rows, &r); err != nil {
			return translateCtx(ctx, err) // rows closed by ctx fail to scan
		}
		e, err := dec.Decode(&r)
		if err != nil {
			return err
		}
		if !emit(e) {
			return nil
		}
	}
	return translateCtx(ctx, rows.Err())
}

// readError translates a failed read. When the log file has been moved or
// deleted under a writable store, that is the cause, whatever SQLite said
// (a new read connection finds no file to open): the write that needed the
// read then reports the same cause as one that reached the writer.
func (s *EventStore) readError(err error) error {
	if s.watch != nil {
		if pathErr := s.checkPath(); pathErr != nil {
			return pathErr
		}
	}
	return translate(err)
}

// translateCtx prefers ctx's error, since the driver reports an interrupted
// statement in its own words.
func translateCtx(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	return translate(err)
}

// scanRow scans one event row into r. A value of another type than the
// ledger writes (SQLite stores what it is given) or an id that is not 16
// bytes is the log's fault (domain.StoredError), like a value that does
// not decode.
func scanRow(rows *sql.Rows, r *eventcodec.Row) error {
	var id sql.RawBytes
	var metadata sql.NullString
	err := rows.Scan(&r.Position, &id, &r.StreamKey, &r.Version, &r.Type, &r.Kind,
		&r.Occurred, &r.Recorded, &metadata, &r.User, &r.TargetType, &r.TargetID)
	if err != nil {
		return domain.StoredError(fmt.Sprintf("event %d: stored row", r.Position), err)
	}
	r.Metadata = metadata.String
	if r.ID, err = uuid.FromBytes(id); err != nil {
		return domain.StoredError(fmt.Sprintf("event %d: stored id", r.Position), err)
	}
	return nil
}

// sameFile checks that a read-only store's path still names the file it
// opened. Its connections go on reading a file deleted or replaced at the
// path (a restore, a log made anew), which the writer and every later
// reader no longer see: a tailer such as the relay would wait for ever
// on a log nobody writes. It is domain.ErrLogReplaced when not. A path that
// cannot be checked (a stat failing with EACCES or EIO during a deploy or on
// a network file system) is only domain.ErrUnavailable: it may pass, and a
// replaced log would stop a relay for good.
func (s *EventStore) sameFile() error {
	if s.opened == nil {
		return nil
	}
	changed, err := s.opened.Changed()
	if err != nil {
		return fmt.Errorf("sqlite: cannot check that %s still names the file this store opened: %w: %w",
			s.path, err, domain.ErrUnavailable)
	}
	if changed == "" {
		return nil
	}
	return fmt.Errorf("sqlite: %s no longer names the file this store opened (deleted, moved or replaced: another log?): restart to read it: %w: %w",
		s.path, domain.ErrLogReplaced, domain.ErrUnavailable)
}

// usable fails reads after Close with domain.ErrClosed.
func (s *EventStore) usable() error {
	if s.closed.Load() {
		return fmt.Errorf("sqlite event store: %w", domain.ErrClosed)
	}
	return nil
}
