package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/interactionledger/ledger/adapters/logcopy"
	"github.com/interactionledger/ledger/domain"
)

var (
	_ logcopy.Store  = (*EventStore)(nil)
	_ logcopy.Sealed = (*EventStore)(nil)
)

// Moved reports where the log went when it is sealed (logcopy.Sealed), on
// a read-only store too.
func (s *EventStore) Moved(ctx context.Context) (logcopy.Moved, bool, error) {
	return movedIn(ctx, s.read)
}

// BeginCopy begins a transaction on a connection of its own that holds
// the file's write lock (BEGIN IMMEDIATE): other connections' writes,
// this process's writer's and other processes', wait up to their busy
// timeout and then fail as the file being locked. It returns
// domain.ErrUnavailable for a read-only store or when the lock is not had
// within the store's busy timeout.
func (s *EventStore) BeginCopy(ctx context.Context) (logcopy.Tx, error) {
	if s.write == nil {
		return nil, fmt.Errorf("copy: the store is open read-only: %w", domain.ErrUnavailable)
	}
	db, err := sql.Open(driverName, s.dsn(false)) // _txlock=immediate
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("copy: lock the log: %w", translate(err))
	}
	return &copyTx{db: db, tx: tx}, nil
}

// copyTx is logcopy.Tx on a SQLite file.
type copyTx struct {
	db *sql.DB
	tx *sql.Tx
}

func (c *copyTx) LogID(ctx context.Context) (string, error) {
	var id string
	err := c.tx.QueryRowContext(ctx, `SELECT id FROM log_identity`).Scan(&id)
	return id, copyErr("read the log's identity", err)
}

func (c *copyTx) Head(ctx context.Context) (int64, error) {
	var head int64
	err := c.tx.QueryRowContext(ctx, `SELECT coalesce(max(position), 0) FROM events`).Scan(&head)
	return head, copyErr("read the head", err)
}

func (c *copyTx) Empty(ctx context.Context) (bool, error) {
	var held bool
	err := c.tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM events) OR EXISTS (SELECT 1 FROM streams)
		OR EXISTS (SELECT 1 FROM idempotency)`).Scan(&held)
	return !held, copyErr("look for rows", err)
}

func (c *copyTx) Moved(ctx context.Context) (logcopy.Moved, bool, error) {
	return movedIn(ctx, c.tx)
}

// movedIn reads where a sealed log went (logcopy.Tx.Moved).
func movedIn(ctx context.Context, q queryer) (logcopy.Moved, bool, error) {
	var m logcopy.Moved
	var at int64
	err := q.QueryRowContext(ctx, `SELECT dest, moved_at FROM log_moved`).Scan(&m.To, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return m, false, nil
	}
	m.At = time.Unix(0, at).UTC()
	return m, err == nil, copyErr("read whether the log moved", err)
}

func (c *copyTx) Streams(ctx context.Context) iter.Seq2[logcopy.Stream, error] {
	return copyRows(ctx, c.tx, "read streams", `SELECT stream_key, user_id, target_type, target_id, version, last_position, state
		FROM streams ORDER BY stream_key`, func(rows *sql.Rows, st *logcopy.Stream) error {
		return rows.Scan(&st.Key, &st.User, &st.TargetType, &st.TargetID, &st.Version, &st.LastPosition, &st.State)
	})
}

func (c *copyTx) Events(ctx context.Context) iter.Seq2[logcopy.Event, error] {
	var id []byte
	var md sql.NullString
	return copyRows(ctx, c.tx, "read events", `SELECT position, id, stream_key, stream_version, type, kind, occurred_at, recorded_at, metadata
		FROM events ORDER BY position`, func(rows *sql.Rows, e *logcopy.Event) error {
		err := rows.Scan(&e.Position, &id, &e.StreamKey, &e.StreamVersion, &e.Type, &e.Kind, &e.OccurredAt, &e.RecordedAt, &md)
		if err != nil {
			return err
		}
		e.Metadata = md.String
		if e.ID, err = uuid.FromBytes(id); err != nil {
			return domain.StoredError(fmt.Sprintf("event %d: id", e.Position), err)
		}
		return nil
	})
}

func (c *copyTx) Idempotency(ctx context.Context) iter.Seq2[logcopy.Idempotency, error] {
	return copyRows(ctx, c.tx, "read idempotency records", `SELECT user_id, key, request_hash, changed, active, state,
		stream_version, position, created_at FROM idempotency`, func(rows *sql.Rows, r *logcopy.Idempotency) error {
		return rows.Scan(&r.User, &r.Key, &r.RequestHash, &r.Changed, &r.Active, &r.State, &r.StreamVersion, &r.Position, &r.CreatedAt)
	})
}

// copyRows yields the rows of query, each scanned by scan.
func copyRows[T any](ctx context.Context, tx *sql.Tx, op, query string, scan func(*sql.Rows, *T) error) iter.Seq2[T, error] {
	return domain.Emitting(op, func(emit func(T) bool) error {
		rows, err := tx.QueryContext(ctx, query)
		if err != nil {
			return translate(err)
		}
		defer rows.Close()
		var v T
		for rows.Next() {
			if err := scan(rows, &v); err != nil {
				return err
			}
			if !emit(v) {
				return nil
			}
		}
		return translate(rows.Err())
	})
}

// Load writes log into the empty file, then the stream indexes the
// writer keeps (0002, 0003) up to the last stream.
func (c *copyTx) Load(ctx context.Context, log logcopy.Log) error {
	if _, err := c.tx.ExecContext(ctx, `UPDATE log_identity SET id = ?`, log.ID); err != nil {
		return copyErr("set the log's identity", err)
	}
	err := insertAll(ctx, c.tx, "streams", `INSERT INTO streams (stream_key, user_id, target_type, target_id, version, last_position, state)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, log.Streams, func(st logcopy.Stream) []any {
		return []any{st.Key, st.User, st.TargetType, st.TargetID, st.Version, st.LastPosition, st.State}
	})
	if err != nil {
		return err
	}
	err = insertAll(ctx, c.tx, "events", `INSERT INTO events (position, id, stream_key, stream_version, type, kind, occurred_at, recorded_at, metadata)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, log.Events, func(e logcopy.Event) []any {
		var md any
		if e.Metadata != "" {
			md = e.Metadata
		}
		return []any{e.Position, e.ID[:], e.StreamKey, e.StreamVersion, e.Type, e.Kind, e.OccurredAt, e.RecordedAt, md}
	})
	if err != nil {
		return err
	}
	err = insertAll(ctx, c.tx, "idempotency", `INSERT INTO idempotency (user_id, key, request_hash, changed, active, state,
		stream_version, position, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, log.Idempotency, func(r logcopy.Idempotency) []any {
		return []any{r.User, r.Key, r.RequestHash, r.Changed, r.Active, r.State, r.StreamVersion, r.Position, r.CreatedAt}
	})
	if err != nil {
		return err
	}
	for _, q := range []string{
		`INSERT INTO stream_users (user_id, target_type, target_id, stream_key)
		 SELECT user_id, target_type, target_id, stream_key FROM streams ORDER BY user_id, target_type, target_id`,
		`INSERT INTO stream_targets (target_type, target_id, stream_key)
		 SELECT target_type, target_id, stream_key FROM streams ORDER BY target_type, target_id, stream_key`,
		`UPDATE stream_targets_through SET through = (SELECT coalesce(max(stream_key), 0) FROM streams)`,
	} {
		if _, err := c.tx.ExecContext(ctx, q); err != nil {
			return copyErr("index the streams", err)
		}
	}
	return nil
}

// insertAll inserts every value of seq with the statement insert.
func insertAll[T any](ctx context.Context, tx *sql.Tx, table, insert string, seq iter.Seq2[T, error], args func(T) []any) error {
	stmt, err := tx.PrepareContext(ctx, insert)
	if err != nil {
		return copyErr("write "+table, err)
	}
	defer stmt.Close()
	for v, err := range seq {
		if err != nil {
			return err
		}
		if _, err := stmt.ExecContext(ctx, args(v)...); err != nil {
			return copyErr("write "+table, err)
		}
	}
	return nil
}

// Seal records m and adds the triggers that refuse every write of the
// log's tables with m's message.
func (c *copyTx) Seal(ctx context.Context, m logcopy.Moved) error {
	if _, err := c.tx.ExecContext(ctx, `INSERT INTO log_moved (one, dest, moved_at) VALUES (1, ?, ?)`, m.To, m.At.UnixNano()); err != nil {
		return copyErr("seal", err)
	}
	// RAISE takes a literal only.
	msg := "'" + strings.ReplaceAll(m.Message(), "'", "''") + "'"
	for _, t := range []struct{ table, op string }{
		{"events", "INSERT"}, {"streams", "INSERT"}, {"streams", "UPDATE"}, {"idempotency", "INSERT"},
	} {
		q := fmt.Sprintf(`CREATE TRIGGER %s_%s_moved BEFORE %s ON %s BEGIN SELECT RAISE(ABORT, %s); END`,
			t.table, strings.ToLower(t.op), t.op, t.table, msg)
		if _, err := c.tx.ExecContext(ctx, q); err != nil {
			return copyErr("seal", err)
		}
	}
	return nil
}

func (c *copyTx) Commit(context.Context) error {
	err := c.tx.Commit()
	return errors.Join(copyErr("commit", err), c.db.Close())
}

func (c *copyTx) Rollback(context.Context) error {
	err := c.tx.Rollback()
	if errors.Is(err, sql.ErrTxDone) {
		err = nil
	}
	return errors.Join(copyErr("roll back", err), c.db.Close())
}

// copyErr is err of a copy's step op, translated.
func copyErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, translate(err))
}
