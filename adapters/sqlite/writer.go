package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/interactionledger/ledger/domain"
)

// idempotencyTTL is how long idempotency records are kept; purgeEvery is
// how often the writer deletes older ones.
const (
	idempotencyTTL = 48 * time.Hour
	purgeEvery     = time.Hour
)

// writer owns the single write connection and its prepared statements. Only
// the writer goroutine (and Open, before it starts) uses it.
type writer struct {
	ctx  context.Context // never cancelled: a started transaction always finishes
	conn *sql.Conn

	maxPosition, selectStream, insertStream, updateStream *sql.Stmt
	insertEvent, insertIdempotency                        *sql.Stmt
}

const (
	sqlMaxPosition  = `SELECT coalesce(max(position), 0) FROM events`
	sqlSelectStream = `SELECT stream_key, version FROM streams
		WHERE user_id = ? AND target_type = ? AND target_id = ?`
	sqlInsertStream = `INSERT INTO streams (user_id, target_type, target_id, version, last_position, state)
		VALUES (?, ?, ?, ?, ?, ?)`
	sqlUpdateStream = `UPDATE streams SET version = ?, last_position = ?, state = ? WHERE stream_key = ?`
	sqlInsertEvent  = `INSERT INTO events
		(position, id, stream_key, stream_version, type, kind, occurred_at, recorded_at, metadata)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlInsertIdempotency = `INSERT INTO idempotency
		(user_id, key, request_hash, changed, active, state, stream_version, position, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

func newWriter(ctx context.Context, s *EventStore) (*writer, error) {
	conn, err := s.write.Conn(ctx)
	if err != nil {
		return nil, translate(err)
	}
	w := &writer{ctx: context.WithoutCancel(ctx), conn: conn}
	if err := w.setup(ctx); err != nil {
		return w, err
	}
	if err := w.purge(s.log); err != nil {
		return w, err
	}
	return w, nil
}

func (w *writer) setup(ctx context.Context) error {
	var mode string
	if err := w.conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return translate(err)
	}
	if mode != "wal" {
		return fmt.Errorf("journal mode is %q, not wal: %w", mode, domain.ErrUnavailable)
	}
	if err := migrate(ctx, w.conn); err != nil {
		return err
	}
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&w.maxPosition, sqlMaxPosition}, {&w.selectStream, sqlSelectStream},
		{&w.insertStream, sqlInsertStream}, {&w.updateStream, sqlUpdateStream},
		{&w.insertEvent, sqlInsertEvent}, {&w.insertIdempotency, sqlInsertIdempotency},
	} {
		stmt, err := w.conn.PrepareContext(ctx, p.sql)
		if err != nil {
			return fmt.Errorf("prepare: %w", translate(err))
		}
		*p.stmt = stmt
	}
	return nil
}

func (w *writer) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{w.maxPosition, w.selectStream, w.insertStream,
		w.updateStream, w.insertEvent, w.insertIdempotency} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(append(errs, w.conn.Close())...)
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
// commits them until Close.
func (s *EventStore) run() {
	defer close(s.done)
	purge := time.NewTicker(purgeEvery)
	defer purge.Stop()
	batch := make([]*request, 0, s.cfg.MaxBatch)
	for {
		select {
		case <-s.quit:
			s.drain()
			return
		default:
		}
		select {
		case r := <-s.queue:
			batch = s.gather(append(batch, r))
			s.commit(batch)
			clear(batch)
			batch = batch[:0]
		case <-purge.C:
			_ = s.w.purge(s.log)
		case <-s.quit:
			s.drain()
			return
		}
	}
}

// gather adds whatever is queued to batch, up to MaxBatch, lingering up to
// MaxDelay for more.
func (s *EventStore) gather(batch []*request) []*request {
	for len(batch) < s.cfg.MaxBatch {
		select {
		case r := <-s.queue:
			batch = append(batch, r)
			continue
		default:
		}
		break
	}
	if s.cfg.MaxDelay <= 0 || len(batch) >= s.cfg.MaxBatch {
		return batch
	}
	timer := time.NewTimer(s.cfg.MaxDelay)
	defer timer.Stop()
	for len(batch) < s.cfg.MaxBatch {
		select {
		case r := <-s.queue:
			batch = append(batch, r)
		case <-timer.C:
			return batch
		case <-s.quit:
			return batch
		}
	}
	return batch
}

// drain fails every append still queued with domain.ErrClosed.
func (s *EventStore) drain() {
	for {
		select {
		case r := <-s.queue:
			if r.state.CompareAndSwap(statePending, stateCancelled) {
				r.answer <- result{err: fmt.Errorf("append %s: %w", r.req.Stream, domain.ErrClosed)}
			}
		default:
			return
		}
	}
}

// commit writes batch in one transaction and answers every append in it
// that its caller has not cancelled.
func (s *EventStore) commit(batch []*request) {
	taken := batch[:0]
	for _, r := range batch {
		if r.state.CompareAndSwap(statePending, stateTaken) {
			taken = append(taken, r)
		}
	}
	if len(taken) == 0 {
		return
	}
	start := time.Now()
	results, stats := s.w.commit(taken, start)
	stats.Duration = time.Since(start)
	if stats.Err == nil {
		s.notifyCommitted()
	} else {
		s.log.Error("group commit failed", "appends", len(taken), "err", stats.Err)
	}
	if s.cfg.OnCommit != nil {
		s.cfg.OnCommit(stats)
	}
	for i, r := range taken {
		r.answer <- results[i]
	}
}

// commit runs one IMMEDIATE transaction with each append in its own
// savepoint. When the transaction as a whole fails, every append gets its
// error.
func (w *writer) commit(batch []*request, now time.Time) ([]result, CommitStats) {
	stats := CommitStats{Appends: len(batch)}
	results := make([]result, len(batch))
	fail := func(err error) ([]result, CommitStats) {
		_, _ = w.conn.ExecContext(w.ctx, "ROLLBACK")
		for i, r := range batch {
			results[i] = result{err: fmt.Errorf("append %s: %w", r.req.Stream, err)}
		}
		stats.Err, stats.Events, stats.Failed = err, 0, len(batch)
		return results, stats
	}
	if _, err := w.conn.ExecContext(w.ctx, "BEGIN IMMEDIATE"); err != nil {
		return fail(fmt.Errorf("begin: %w", translate(err)))
	}
	var last int64
	if err := w.maxPosition.QueryRowContext(w.ctx).Scan(&last); err != nil {
		return fail(translate(err))
	}
	recorded := now.UTC()
	for i, r := range batch {
		res, err, fatal := w.apply(r, last+1, recorded)
		if fatal != nil {
			return fail(fatal)
		}
		results[i] = result{res: res, err: err}
		if err != nil {
			stats.Failed++
			continue
		}
		last += int64(len(r.events))
		stats.Events += len(r.events)
	}
	if _, err := w.conn.ExecContext(w.ctx, "COMMIT"); err != nil {
		return fail(fmt.Errorf("commit: %w", translate(err)))
	}
	return results, stats
}

// apply runs one append inside a savepoint, its events numbered from next.
// err is the append's own failure (its savepoint rolled back); fatal means
// the transaction itself is broken.
func (w *writer) apply(r *request, next int64, recorded time.Time) (res domain.AppendResult, err, fatal error) {
	if _, err := w.conn.ExecContext(w.ctx, "SAVEPOINT a"); err != nil {
		return res, nil, fmt.Errorf("savepoint: %w", translate(err))
	}
	res, err = w.write(r, next, recorded)
	if err != nil {
		if _, rbErr := w.conn.ExecContext(w.ctx, "ROLLBACK TO a; RELEASE a"); rbErr != nil {
			return res, nil, errors.Join(err, translate(rbErr))
		}
		return domain.AppendResult{}, err, nil
	}
	if _, err := w.conn.ExecContext(w.ctx, "RELEASE a"); err != nil {
		return res, nil, fmt.Errorf("release savepoint: %w", translate(err))
	}
	return res, nil, nil
}

// write checks the stream's version as stored (another process may have
// appended) and writes the stream snapshot, the events and the idempotency
// record.
func (w *writer) write(r *request, next int64, recorded time.Time) (domain.AppendResult, error) {
	req := r.req
	st := req.Stream
	var key, version int64
	err := w.selectStream.QueryRowContext(w.ctx, st.User.String(), st.Target.Type(), st.Target.ID()).Scan(&key, &version)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return domain.AppendResult{}, appendError(st, err)
	}
	if version != req.ExpectedVersion {
		return domain.AppendResult{}, fmt.Errorf("append %s: at version %d, not %d: %w",
			st, version, req.ExpectedVersion, domain.ErrVersionConflict)
	}
	res := domain.AppendResult{RecordedAt: recorded}
	if n := len(r.events); n > 0 {
		res.LastPosition = next + int64(n) - 1
		if key, err = w.upsertStream(r, key, res.LastPosition); err != nil {
			return domain.AppendResult{}, appendError(st, err)
		}
		if err := w.insertEvents(r, key, next, recorded.UnixNano()); err != nil {
			return domain.AppendResult{}, appendError(st, err)
		}
	}
	if req.Idempotency != nil {
		if err := w.recordIdempotency(*req.Idempotency, res.LastPosition, recorded); err != nil {
			return domain.AppendResult{}, appendError(st, err)
		}
	}
	return res, nil
}

// upsertStream stores the new snapshot and returns the stream's key; key 0
// means the stream does not exist yet.
func (w *writer) upsertStream(r *request, key, lastPosition int64) (int64, error) {
	version := r.events[len(r.events)-1].version
	state := r.req.State.String()
	if key != 0 {
		_, err := w.updateStream.ExecContext(w.ctx, version, lastPosition, state, key)
		return key, err
	}
	st := r.req.Stream
	res, err := w.insertStream.ExecContext(w.ctx, st.User.String(), st.Target.Type(), st.Target.ID(),
		version, lastPosition, state)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

func (w *writer) insertEvents(r *request, key, next int64, recorded int64) error {
	for i, e := range r.events {
		_, err := w.insertEvent.ExecContext(w.ctx, next+int64(i), e.id, key, e.version,
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
	_, err := w.insertIdempotency.ExecContext(w.ctx, rec.User.String(), rec.Key, rec.RequestHash,
		out.Changed, out.Active, out.State.String(), out.StreamVersion, out.Position, created.UnixNano())
	return err
}
