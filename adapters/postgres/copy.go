package postgres

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"

	"github.com/jackc/pgx/v5"

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
	return movedIn(ctx, s.pool, pgx.Identifier{s.schema, "log_moved"}.Sanitize())
}

// codeLogMoved is the SQLSTATE of a sealed log's triggers (0004).
const codeLogMoved = "LGMVD"

// BeginCopy begins a transaction that locks the head row, as every
// appending transaction does first: the writers of every node wait for it
// up to their head lock timeout (Config.HeadLockTimeout) and then fail.
// The URL's statement_timeout and the idle-in-transaction timeout do not
// apply to it (a copy reads and writes for as long as the log takes).
func (s *EventStore) BeginCopy(ctx context.Context) (logcopy.Tx, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("copy: %w", translate(ctx, err))
	}
	tx, err := conn.Begin(ctx)
	if err == nil {
		_, err = tx.Exec(ctx, `SET LOCAL statement_timeout = 0; SET LOCAL idle_in_transaction_session_timeout = 0;
			SELECT position FROM log_head FOR UPDATE`)
	}
	if err != nil {
		conn.Release()
		return nil, fmt.Errorf("copy: lock the log's head: %w", translate(ctx, err))
	}
	return &copyTx{s: s, conn: conn.Conn(), release: conn.Release, tx: tx}, nil
}

// copyTx is logcopy.Tx on a PostgreSQL schema.
type copyTx struct {
	s       *EventStore
	conn    *pgx.Conn
	release func()
	tx      pgx.Tx
	done    bool
}

func (c *copyTx) table(name string) string { return pgx.Identifier{c.s.schema, name}.Sanitize() }

func (c *copyTx) LogID(ctx context.Context) (string, error) {
	var id string
	err := c.tx.QueryRow(ctx, `SELECT id::text FROM `+c.table("log_identity")).Scan(&id)
	return id, copyErr(ctx, "read the log's identity", err)
}

func (c *copyTx) Head(ctx context.Context) (int64, error) {
	var head int64
	err := c.tx.QueryRow(ctx, `SELECT coalesce(max(position), 0) FROM `+c.table("events")).Scan(&head)
	return head, copyErr(ctx, "read the head", err)
}

func (c *copyTx) Empty(ctx context.Context) (bool, error) {
	var held bool
	err := c.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+c.table("events")+`) OR EXISTS (SELECT 1 FROM `+
		c.table("streams")+`) OR EXISTS (SELECT 1 FROM `+c.table("idempotency")+`)`).Scan(&held)
	return !held, copyErr(ctx, "look for rows", err)
}

func (c *copyTx) Moved(ctx context.Context) (logcopy.Moved, bool, error) {
	return movedIn(ctx, c.tx, c.table("log_moved"))
}

// movedIn reads where a sealed log went (logcopy.Tx.Moved).
func movedIn(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, table string) (logcopy.Moved, bool, error) {
	var m logcopy.Moved
	err := q.QueryRow(ctx, `SELECT dest, moved_at FROM `+table).Scan(&m.To, &m.At)
	if isNoRows(err) {
		return m, false, nil
	}
	return m, err == nil, copyErr(ctx, "read whether the log moved", err)
}

func (c *copyTx) Streams(ctx context.Context) iter.Seq2[logcopy.Stream, error] {
	return copyRows(ctx, c.tx, "read streams", `SELECT stream_key, user_id, target_type, target_id, version, last_position, state
		FROM `+c.table("streams")+` ORDER BY stream_key`, func(rows pgx.Rows, st *logcopy.Stream) error {
		return rows.Scan(&st.Key, &st.User, &st.TargetType, &st.TargetID, &st.Version, &st.LastPosition, &st.State)
	})
}

func (c *copyTx) Events(ctx context.Context) iter.Seq2[logcopy.Event, error] {
	var md *string
	return copyRows(ctx, c.tx, "read events", `SELECT position, id, stream_key, stream_version, type, kind, occurred_at, recorded_at, metadata
		FROM `+c.table("events")+` ORDER BY position`, func(rows pgx.Rows, e *logcopy.Event) error {
		if err := rows.Scan(&e.Position, (*[16]byte)(&e.ID), &e.StreamKey, &e.StreamVersion, &e.Type, &e.Kind,
			&e.OccurredAt, &e.RecordedAt, &md); err != nil {
			return err
		}
		e.Metadata = ""
		if md != nil {
			e.Metadata = *md
		}
		return nil
	})
}

func (c *copyTx) Idempotency(ctx context.Context) iter.Seq2[logcopy.Idempotency, error] {
	return copyRows(ctx, c.tx, "read idempotency records", `SELECT user_id, key, request_hash, changed, active, state,
		stream_version, position, created_at FROM `+c.table("idempotency"), func(rows pgx.Rows, r *logcopy.Idempotency) error {
		return rows.Scan(&r.User, &r.Key, &r.RequestHash, &r.Changed, &r.Active, &r.State, &r.StreamVersion, &r.Position, &r.CreatedAt)
	})
}

// copyRows yields the rows of query, each scanned by scan.
func copyRows[T any](ctx context.Context, tx pgx.Tx, op, query string, scan func(pgx.Rows, *T) error) iter.Seq2[T, error] {
	return domain.Emitting(op, func(emit func(T) bool) error {
		rows, err := tx.Query(ctx, query)
		if err != nil {
			return translate(ctx, err)
		}
		defer rows.Close()
		var v T
		for rows.Next() {
			if err := scan(rows, &v); err != nil {
				return translate(ctx, err)
			}
			if !emit(v) {
				return nil
			}
		}
		return translate(ctx, rows.Err())
	})
}

// Load copies log into the empty schema with COPY, its tables' indexes
// dropped meanwhile (dropIndexes), then moves the head row to its last
// position and stream key.
func (c *copyTx) Load(ctx context.Context, log logcopy.Log) error {
	if _, err := c.tx.Exec(ctx, `UPDATE `+c.table("log_identity")+` SET id = $1`, log.ID); err != nil {
		return copyErr(ctx, "set the log's identity", err)
	}
	remake, err := c.dropIndexes(ctx)
	if err != nil {
		return err
	}
	if err := c.copyRows(ctx, log); err != nil {
		return err
	}
	for _, q := range remake {
		if _, err := c.tx.Exec(ctx, q); err != nil {
			return copyErr(ctx, "index the copy", err)
		}
	}
	_, err = c.tx.Exec(ctx, `UPDATE `+c.table("log_head")+` SET position = (SELECT coalesce(max(position), 0) FROM `+c.table("events")+
		`), stream_key = (SELECT coalesce(max(stream_key), 0) FROM `+c.table("streams")+`)`)
	return copyErr(ctx, "move the head", err)
}

// copiedTables are the tables Load fills.
var copiedTables = []string{"streams", "events", "idempotency"}

// dropIndexes drops the primary keys, unique constraints and indexes of
// the tables Load fills and returns the statements that make them again,
// with their names (errors name them: constraintError): COPY into tables
// without indexes, then one sorted build of each, took 12 s for a million
// events where COPY into the indexed table took 20 s (a loaded 2-core
// machine; the whole import went from 32k to 45k events/s). The tables are
// locked (ACCESS EXCLUSIVE) until the commit: readers of the destination
// wait for the copy instead of seeing an empty log.
func (c *copyTx) dropIndexes(ctx context.Context) ([]string, error) {
	tables := make([]string, len(copiedTables))
	for i, t := range copiedTables {
		tables[i] = c.table(t)
	}
	rows, err := c.tx.Query(ctx, `
		SELECT format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname, pg_get_constraintdef(oid)),
		       format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname)
		FROM pg_constraint WHERE conrelid = ANY ($1::text[]::regclass[]) AND contype IN ('p', 'u')
		UNION ALL
		SELECT pg_get_indexdef(i.indexrelid), format('DROP INDEX %s', i.indexrelid::regclass)
		FROM pg_index i WHERE i.indrelid = ANY ($1::text[]::regclass[])
		AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)`, tables)
	if err != nil {
		return nil, copyErr(ctx, "read the indexes", err)
	}
	var remake, drop []string
	var make1, drop1 string
	_, err = pgx.ForEachRow(rows, []any{&make1, &drop1}, func() error {
		remake, drop = append(remake, make1), append(drop, drop1)
		return nil
	})
	if err != nil {
		return nil, copyErr(ctx, "read the indexes", err)
	}
	drop = append(drop, "SET LOCAL maintenance_work_mem = '256MB'") // for the builds
	if _, err := c.tx.Exec(ctx, strings.Join(drop, ";\n")); err != nil {
		return nil, copyErr(ctx, "drop the indexes", err)
	}
	return remake, nil
}

// copyRows copies log's rows with COPY.
func (c *copyTx) copyRows(ctx context.Context, log logcopy.Log) error {
	err := copyIn(ctx, c, "streams", []string{"stream_key", "user_id", "target_type", "target_id", "version", "last_position", "state"},
		log.Streams, func(st logcopy.Stream, row []any) {
			row[0], row[1], row[2], row[3], row[4], row[5], row[6] = st.Key, st.User, st.TargetType, st.TargetID, st.Version, st.LastPosition, st.State
		})
	if err != nil {
		return err
	}
	err = copyIn(ctx, c, "events", []string{"position", "id", "stream_key", "stream_version", "type", "kind", "occurred_at", "recorded_at", "metadata"},
		log.Events, func(e logcopy.Event, row []any) {
			var md *string
			if e.Metadata != "" {
				md = &e.Metadata
			}
			row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8] = e.Position, [16]byte(e.ID), e.StreamKey, e.StreamVersion, e.Type, e.Kind, e.OccurredAt, e.RecordedAt, md
		})
	if err != nil {
		return err
	}
	err = copyIn(ctx, c, "idempotency", []string{"user_id", "key", "request_hash", "changed", "active", "state", "stream_version", "position", "created_at"},
		log.Idempotency, func(r logcopy.Idempotency, row []any) {
			row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8] = r.User, r.Key, r.RequestHash, r.Changed, r.Active, r.State, r.StreamVersion, r.Position, r.CreatedAt
		})
	return err
}

// copyIn copies every value of seq into table with COPY, each made a row
// by fill (into a row it reuses: CopyFrom encodes each row as it takes it).
func copyIn[T any](ctx context.Context, c *copyTx, table string, columns []string, seq iter.Seq2[T, error], fill func(T, []any)) error {
	next, stop := iter.Pull2(seq)
	defer stop()
	row := make([]any, len(columns))
	var seqErr error
	_, err := c.tx.CopyFrom(ctx, pgx.Identifier{c.s.schema, table}, columns, pgx.CopyFromFunc(func() ([]any, error) {
		v, err, ok := next()
		switch {
		case !ok:
			return nil, nil
		case err != nil:
			seqErr = err
			return nil, err
		}
		fill(v, row)
		return row, nil
	}))
	if seqErr != nil {
		return seqErr
	}
	return copyErr(ctx, "write "+table, err)
}

// Seal records m and puts log_moved_refuse (0004) on the log's tables
// with m's message. The head row is locked already, so no writer holds
// a lock the triggers wait for.
func (c *copyTx) Seal(ctx context.Context, m logcopy.Moved) error {
	_, err := c.tx.Exec(ctx, `INSERT INTO `+c.table("log_moved")+` (dest, moved_at) VALUES ($1, $2)`, m.To, m.At)
	if err != nil {
		return copyErr(ctx, "seal", err)
	}
	msg := "'" + strings.ReplaceAll(m.Message(), "'", "''") + "'"
	var b strings.Builder
	for _, t := range []string{"log_head", "events", "streams", "idempotency"} {
		fmt.Fprintf(&b, "CREATE TRIGGER log_moved BEFORE INSERT OR UPDATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION %s(%s);\n",
			c.table(t), c.table("log_moved_refuse"), msg)
	}
	_, err = c.tx.Exec(ctx, b.String())
	return copyErr(ctx, "seal", err)
}

func (c *copyTx) Commit(ctx context.Context) error {
	err := c.tx.Commit(ctx)
	c.end()
	return copyErr(ctx, "commit", err)
}

func (c *copyTx) Rollback(ctx context.Context) error {
	if c.done {
		return nil
	}
	err := c.tx.Rollback(ctx)
	c.end()
	if errors.Is(err, pgx.ErrTxClosed) {
		err = nil
	}
	return copyErr(ctx, "roll back", err)
}

func (c *copyTx) end() {
	if !c.done {
		c.done = true
		c.release()
	}
}

// copyErr is err of a copy's step op, translated.
func copyErr(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, translate(ctx, err))
}

// refuseMoved fails a writable open of a sealed log (logcopy.Moved.Err).
func (s *EventStore) refuseMoved(ctx context.Context) error {
	m, moved, err := movedIn(ctx, s.pool, pgx.Identifier{s.schema, "log_moved"}.Sanitize())
	if err == nil && moved {
		err = m.Err()
	}
	return err
}

// movedError is the error of a sealed log's trigger: its message says
// where the log went.
func movedError(msg string) error {
	return &storeError{msg: "postgres: " + msg, cause: domain.ErrLogMoved, kind: domain.ErrLogMoved}
}

// Where names the log a URL opens: host, port, database and schema, so
// that two URLs of one log (other parameters, another user) are told to
// be one. It returns an error wrapping domain.ErrInvalidInput for a URL
// that does not parse.
func Where(url string) (string, error) {
	pcfg, schema, err := poolConfig(Config{URL: url})
	if err != nil {
		return "", err
	}
	c := pcfg.ConnConfig
	return fmt.Sprintf("%s:%d/%s/%s", c.Host, c.Port, c.Database, schema), nil
}
