package postgres

import (
	"context"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/interactionledger/ledger/adapters/eventcodec"
	"github.com/interactionledger/ledger/domain"
)

// The columns every event read selects, in scan order.
const eventColumns = `e.position, e.id, e.stream_key, e.stream_version, e.type, e.kind,
	e.occurred_at, e.recorded_at, e.metadata, s.user_id, s.target_type, s.target_id`

// sqlSnapshot reads a stream by its identity, as the writer's
// sqlCheckStreams does.
const sqlSnapshot = `SELECT version, last_position, state FROM streams
	WHERE user_id = $1 AND target_type = $2 AND target_id = $3`

// Snapshot returns the stream's stored snapshot, the zero Snapshot for an
// unknown stream. It returns domain.ErrUnavailable when the database fails
// and domain.ErrClosed after Close.
func (s *EventStore) Snapshot(ctx context.Context, stream domain.StreamID) (domain.Snapshot, error) {
	if err := s.usable(); err != nil {
		return domain.Snapshot{}, err
	}
	var snap domain.Snapshot
	var state string
	err := s.pool.QueryRow(ctx, sqlSnapshot, stream.User.String(), stream.Target.Type(), stream.Target.ID()).
		Scan(&snap.Version, &snap.LastPosition, &state)
	if isNoRows(err) {
		return domain.Snapshot{}, nil
	}
	if err != nil {
		return domain.Snapshot{}, fmt.Errorf("snapshot %s: %w", stream, translate(ctx, err))
	}
	if snap.State, err = domain.ParseStoredState(state); err != nil {
		return domain.Snapshot{}, fmt.Errorf("snapshot %s: %w", stream, err)
	}
	return snap, nil
}

// Idempotency returns the record stored for (user, key) and whether there
// is one. It returns domain.ErrUnavailable when the database fails and
// domain.ErrClosed after Close.
func (s *EventStore) Idempotency(ctx context.Context, user domain.UserID, key string) (domain.IdempotencyRecord, bool, error) {
	if err := s.usable(); err != nil {
		return domain.IdempotencyRecord{}, false, err
	}
	rec := domain.IdempotencyRecord{User: user, Key: key}
	var state string
	var created int64
	err := s.pool.QueryRow(ctx,
		`SELECT request_hash, changed, active, state, stream_version, position, created_at
		 FROM idempotency WHERE user_id = $1 AND key = $2`, user.String(), key).
		Scan(&rec.RequestHash, &rec.Outcome.Changed, &rec.Outcome.Active, &state,
			&rec.Outcome.StreamVersion, &rec.Outcome.Position, &created)
	if isNoRows(err) {
		return domain.IdempotencyRecord{}, false, nil
	}
	if err != nil {
		return domain.IdempotencyRecord{}, false, fmt.Errorf("idempotency %s: %w", user, translate(ctx, err))
	}
	if rec.Outcome.State, err = domain.ParseStoredState(state); err != nil {
		return domain.IdempotencyRecord{}, false, fmt.Errorf("idempotency %s: %w", user, err)
	}
	rec.CreatedAt = unixNano(created)
	return rec, true, nil
}

// HasEvent reports whether an event with id is stored. It returns
// domain.ErrUnavailable when the database fails and domain.ErrClosed after
// Close.
func (s *EventStore) HasEvent(ctx context.Context, id uuid.UUID) (bool, error) {
	if err := s.usable(); err != nil {
		return false, err
	}
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM events WHERE id = $1)`, [16]byte(id)).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("has event %s: %w", id, translate(ctx, err))
	}
	return ok, nil
}

// Now is the database server's clock, which the log records events by
// (domain.Clocked): a node's own clock may differ from it.
func (s *EventStore) Now(ctx context.Context) (time.Time, error) {
	if err := s.usable(); err != nil {
		return time.Time{}, err
	}
	var ns int64
	if err := s.pool.QueryRow(ctx, `SELECT `+sqlClock).Scan(&ns); err != nil {
		return time.Time{}, fmt.Errorf("read the database's clock: %w", translate(ctx, err))
	}
	return time.Unix(0, ns), nil
}

// LastPosition returns the position of the newest committed event, 0 for
// an empty log: the head row, which moves only in committed appends. It
// returns domain.ErrUnavailable when the database fails and
// domain.ErrClosed after Close.
func (s *EventStore) LastPosition(ctx context.Context) (int64, error) {
	if err := s.usable(); err != nil {
		return 0, err
	}
	var pos int64
	var log string
	err := s.pool.QueryRow(ctx, `SELECT h.position, i.id::text FROM log_head h CROSS JOIN log_identity i`).Scan(&pos, &log)
	if isNoRows(err) {
		return 0, fmt.Errorf("last position: the schema's log_identity (or log_head) is empty: %w: %w", ErrLogReplaced, domain.ErrUnavailable)
	}
	if err != nil {
		return 0, fmt.Errorf("last position: %w", translate(ctx, err))
	}
	if err := s.sameLog(log); err != nil {
		return 0, fmt.Errorf("last position: %w", err)
	}
	return pos, nil
}

// ReadEvents yields each event matching f, in position order, streaming
// rows off the connection (constant memory; domain.EventReader). A failure
// ends the sequence with domain.ErrUnavailable when the database fails,
// domain.ErrClosed after Close, or ctx's error; stopping early releases the
// connection.
func (s *EventStore) ReadEvents(ctx context.Context, f domain.EventFilter) iter.Seq2[domain.Event, error] {
	if err := f.Validate(); err != nil {
		return domain.Emitting("read events", func(func(domain.Event) bool) error { return err })
	}
	q, args := eventQuery(f, s.logID)
	if !f.User.IsZero() || f.TargetType != "" || f.TargetID != "" {
		// Planned for its values every time, as an unnamed statement: a
		// prepared statement switches to a generic plan after five runs,
		// one made for an average target, which reads every event of the
		// target's streams and sorts them for each page (2 s a page of a
		// target of 300,000 streams, where its own plan scans the log by
		// position in 3 ms; its export, a page after another, 107 s).
		args = append([]any{pgx.QueryExecModeDescribeExec}, args...)
	}
	return s.events(ctx, "read events", q, args)
}

// latestQuery picks, for each (stream, kind), its last event at or before
// a position, with only the columns of a toggle: PostgreSQL sorts the log's
// narrow (stream_key, kind, position, type, occurred_at) tuples instead of
// whole rows, and no id or metadata is decoded.
const latestQuery = `SELECT e.position, e.stream_key, e.type, e.kind, e.occurred_at, s.user_id, s.target_type, s.target_id
	FROM (SELECT DISTINCT ON (stream_key, kind) position, stream_key, type, kind, occurred_at FROM events
		WHERE position <= $1 AND (SELECT id::text FROM log_identity) = $2 ORDER BY stream_key, kind, position DESC) e
	JOIN streams s ON s.stream_key = e.stream_key`

// ReadLatest yields the toggle of the last event at a position <= upTo of
// each (stream, kind) (domain.LatestReader), in no particular order. A
// failure ends the sequence as in ReadEvents.
func (s *EventStore) ReadLatest(ctx context.Context, upTo int64) iter.Seq2[domain.Toggle, error] {
	return domain.Emitting("read latest events", func(emit func(domain.Toggle) bool) error {
		return each(ctx, s, latestQuery, []any{upTo, s.logID}, scanToggleRow, (*eventcodec.RowDecoder).Toggle, emit)
	})
}

// scanToggleRow scans one row of latestQuery into r.
func scanToggleRow(rows pgx.Rows, r *eventcodec.Row) error {
	return rows.Scan(&r.Position, &r.StreamKey, &r.Type, &r.Kind, &r.Occurred, &r.User, &r.TargetType, &r.TargetID)
}

// eventQuery builds the query for f.
func eventQuery(f domain.EventFilter, logID string) (string, []any) {
	args := []any{f.After}
	where := []string{"e.position > $1"}
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, strings.Replace(cond, "?", "$"+strconv.Itoa(len(args)), 1))
	}
	// Only the store's own log: a schema dropped and made anew under a
	// running node holds another log, whose events must not reach this
	// node's projections (LastPosition and appends fail on it, naming it).
	add("(SELECT id::text FROM log_identity) = ?", logID)
	if !f.User.IsZero() {
		add("s.user_id = ?", f.User.String())
	}
	if f.TargetType != "" {
		add("s.target_type = ?", f.TargetType)
	}
	if f.TargetID != "" {
		add("s.target_id = ?", f.TargetID)
	}
	if !f.Kind.IsZero() {
		add("e.kind = ?", f.Kind.String())
	}
	since, hasSince, until, hasUntil := f.OccurredNanos()
	if hasSince {
		add("e.occurred_at >= ?", since)
	}
	if hasUntil {
		add("e.occurred_at < ?", until)
	}
	args = append(args, sqlLimit(f.Limit))
	return `SELECT ` + eventColumns + ` FROM events e JOIN streams s ON s.stream_key = e.stream_key WHERE ` +
		strings.Join(where, " AND ") + ` ORDER BY e.position LIMIT $` + strconv.Itoa(len(args)), args
}

// sqlLimit maps "0: no limit" to LIMIT NULL.
func sqlLimit(n int) *int64 {
	if n <= 0 {
		return nil
	}
	v := int64(n)
	return &v
}

// events is the one row-iterating function of every event read: it runs
// q and yields each decoded event; a failure is yielded once, wrapped with
// op. Stopping early closes the rows, which releases the connection.
func (s *EventStore) events(ctx context.Context, op, q string, args []any) iter.Seq2[domain.Event, error] {
	return domain.Emitting(op, func(emit func(domain.Event) bool) error {
		return each(ctx, s, q, args, scanRow, (*eventcodec.RowDecoder).Decode, emit)
	})
}

// each runs q, scans each row with scan, decodes it with decode (events
// or toggles) and emits it until emit returns false.
func each[T any](ctx context.Context, s *EventStore, q string, args []any,
	scan func(pgx.Rows, *eventcodec.Row) error, decode func(*eventcodec.RowDecoder, *eventcodec.Row) (T, error),
	emit func(T) bool) error {
	if err := s.usable(); err != nil {
		return err
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return translate(ctx, err)
	}
	defer rows.Close()
	var dec eventcodec.RowDecoder
	var r eventcodec.Row
	for rows.Next() {
		if err := scan(rows, &r); err != nil {
			return err
		}
		v, err := decode(&dec, &r)
		if err != nil {
			return err
		}
		if !emit(v) {
			return nil
		}
	}
	return translate(ctx, rows.Err())
}

// scanRow scans one event row into r.
func scanRow(rows pgx.Rows, r *eventcodec.Row) error {
	var id [16]byte
	var metadata pgtype.Text
	err := rows.Scan(&r.Position, &id, &r.StreamKey, &r.Version, &r.Type, &r.Kind,
		&r.Occurred, &r.Recorded, &metadata, &r.User, &r.TargetType, &r.TargetID)
	r.ID, r.Metadata = id, metadata.String
	return err
}
