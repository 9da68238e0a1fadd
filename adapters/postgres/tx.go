package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/interactionledger/ledger/domain"
)

// sqlClock is the database's clock in Unix ns (PostgreSQL's clock has
// microseconds): the clock events are recorded by.
const sqlClock = `(extract(epoch FROM clock_timestamp()) * 1000000)::bigint * 1000`

// The statements of a group commit. The head row is locked first; every
// later statement of the transaction sees whatever committed before.
const (
	sqlLockHead = `SELECT h.position, h.stream_key, i.id::text FROM log_head h CROSS JOIN log_identity i FOR UPDATE OF h`
	// sqlRecordedAt reads the time the transaction's events are recorded
	// at (plan.recordAt): the database's clock, read once the head is
	// locked, in Unix ns (PostgreSQL's clock has microseconds), and the
	// recorded_at of the log's last event, sought by its position (as a
	// join with log_head, the planner hashed every event without
	// statistics: TestRecordedAtReadsOneEvent).
	sqlRecordedAt = `SELECT ` + sqlClock + `,
		coalesce((SELECT e.recorded_at FROM events e WHERE e.position = (SELECT h.position FROM log_head h)), 0)`
	sqlCheckStreams = `SELECT s.user_id, s.target_type, s.target_id, s.stream_key, s.version, s.last_position, s.state
		FROM unnest($1::text[], $2::text[], $3::text[]) AS q(u, tt, ti)
		JOIN streams s ON s.user_id = q.u AND s.target_type = q.tt AND s.target_id = q.ti`
	sqlCheckKeys = `SELECT i.user_id, i.key FROM unnest($1::text[], $2::text[]) AS q(u, k)
		JOIN idempotency i ON i.user_id = q.u AND i.key = q.k`
	sqlCheckIDs     = `SELECT id FROM events WHERE id = ANY($1::uuid[])`
	sqlInsertEvents = `INSERT INTO events
		(position, id, stream_key, stream_version, type, kind, occurred_at, recorded_at, metadata)
		SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::bigint[], $4::bigint[], $5::text[],
			$6::text[], $7::bigint[], $8::bigint[], $9::text[])`
	sqlUpsertStreams = `INSERT INTO streams
		(stream_key, user_id, target_type, target_id, version, last_position, state)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[])
		ON CONFLICT (stream_key) DO UPDATE
		SET version = excluded.version, last_position = excluded.last_position, state = excluded.state`
	sqlInsertKeys = `INSERT INTO idempotency
		(user_id, key, request_hash, changed, active, state, stream_version, position, created_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::boolean[], $5::boolean[],
			$6::text[], $7::bigint[], $8::bigint[], $9::bigint[])`
	sqlUpdateHead = `UPDATE log_head SET position = $1, stream_key = $2`
	sqlNotify     = `SELECT pg_notify($1, $2)`
)

// commitTx runs batch as one transaction in two round trips: BEGIN, the
// head lock and the checks; then the writes, the new head, the
// notification and COMMIT. When the whole transaction fails on a unique
// violation (which the checks rule out unless something writes the tables
// without taking the head lock), each append is retried alone, and its
// checks then see the row it collided with: only the guilty one fails, on
// its own, and the store is not marked as failing.
func (s *EventStore) commitTx(batch []*request) ([]result, CommitStats) {
	results, stats := s.commitOnce(batch)
	var pe *pgconn.PgError
	if stats.Err == nil || !errors.As(stats.Err, &pe) || pe.Code != codeUniqueViolation {
		return results, stats
	}
	stats = CommitStats{Appends: len(batch)}
	for i, r := range batch {
		one, st := s.commitOnce([]*request{r})
		results[i] = one[0]
		stats.Events += st.Events
		stats.ClockBehind, stats.RecordedAt = max(stats.ClockBehind, st.ClockBehind), st.RecordedAt
		if one[0].Err != nil {
			stats.Failed++
		}
	}
	return results, stats
}

func (s *EventStore) commitOnce(batch []*request) ([]result, CommitStats) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.HeadLockTimeout+commitTimeout)
	defer cancel()
	actx, cancelAcquire := context.WithTimeout(ctx, acquireTimeout)
	conn, err := s.pool.Acquire(actx)
	cancelAcquire()
	if err != nil {
		return failAll(batch, timedOut(fmt.Errorf("connect: %w", translate(ctx, err))))
	}
	defer conn.Release()
	plan := newPlan()
	if err := s.check(ctx, conn.Conn(), batch, plan); err != nil {
		abort(ctx, conn)
		return failAll(batch, timedOut(err))
	}
	results, stats := plan.decide(batch)
	if err := s.write(ctx, conn.Conn(), plan); err != nil {
		abort(ctx, conn)
		return failAll(batch, timedOut(err))
	}
	return results, stats
}

// commitLost is err, the failure of the round trip that ends in COMMIT;
// when the database gave no answer (the connection was lost, or did not
// answer in time), COMMIT may have been carried out: the error says so,
// and how to find out, rather than that the store cannot take writes.
func commitLost(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) || pgconn.SafeToRetry(err) || (!errors.Is(err, domain.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded)) {
		return err
	}
	return unavailable("no answer to COMMIT (connection lost or timed out): the write may have committed "+
		"(retry it with the same Idempotency-Key to learn its outcome)", err)
}

// timedOut makes the writer's own deadlines (never a caller's) what they
// mean to callers: the database did not answer.
func timedOut(err error) error {
	if errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, domain.ErrUnavailable) {
		return unavailable("database did not answer in time", err)
	}
	return err
}

// abort rolls back after a failed round trip; a connection that cannot
// even do that is closed so that the pool discards it.
func abort(ctx context.Context, conn *pgxpool.Conn) {
	if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
		_ = conn.Conn().Close(ctx)
	}
}

// check runs the first round trip: it begins the transaction, locks the
// head and reads what the batch's appends are checked against.
func (s *EventStore) check(ctx context.Context, conn *pgx.Conn, batch []*request, p *plan) error {
	q := checkQuery(batch)
	b := &pgx.Batch{}
	timeout := strconv.FormatInt(s.cfg.HeadLockTimeout.Milliseconds(), 10)
	b.Queue("BEGIN")
	// lock_timeout bounds each wait for a lock, not the statement: behind
	// another node's writer that waits too, the head lock is two waits
	// (the row's tuple lock, then its holder's transaction), each up to
	// the timeout. statement_timeout bounds the whole statement; the
	// checks after it run under the session's own.
	b.Queue("SET LOCAL lock_timeout = " + timeout)
	b.Queue("SET LOCAL statement_timeout = " + timeout)
	b.Queue(sqlLockHead).QueryRow(func(row pgx.Row) error {
		var log string
		if err := row.Scan(&p.head, &p.keyHead, &log); err != nil {
			return headLockError(err)
		}
		return s.sameLog(log)
	})
	b.Queue("SET LOCAL statement_timeout TO DEFAULT")
	b.Queue(sqlRecordedAt).QueryRow(func(row pgx.Row) error {
		var now, last int64
		if err := row.Scan(&now, &last); err != nil {
			return err
		}
		p.recordAt(now, last)
		return nil
	})
	b.Queue(sqlCheckStreams, q.users, q.types, q.ids).Query(func(rows pgx.Rows) error {
		var u, tt, ti string
		var info streamInfo
		_, err := pgx.ForEachRow(rows, []any{&u, &tt, &ti, &info.key, &info.version, &info.last, &info.state}, func() error {
			p.known[streamKey{u, tt, ti}] = info
			return nil
		})
		return err
	})
	if len(q.keyUsers) > 0 {
		b.Queue(sqlCheckKeys, q.keyUsers, q.keys).Query(func(rows pgx.Rows) error {
			var u, k string
			_, err := pgx.ForEachRow(rows, []any{&u, &k}, func() error {
				p.keys[[2]string{u, k}] = true
				return nil
			})
			return err
		})
	}
	if len(q.eventIDs) > 0 {
		b.Queue(sqlCheckIDs, q.eventIDs).Query(func(rows pgx.Rows) error {
			var id [16]byte
			_, err := pgx.ForEachRow(rows, []any{&id}, func() error {
				p.ids[id] = true
				return nil
			})
			return err
		})
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("check: %w", translate(ctx, err))
	}
	return nil
}

// headLockError is err, the failure of the head lock's statement; when
// it ran out of its statement_timeout (SQLSTATE 57014, which an operator's
// pg_cancel_backend also sends, with another message), it is the head
// lock's timeout, as lock_timeout's own 55P03 is.
func headLockError(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	if pe.Code == codeLockNotAvailable || (pe.Code == codeQueryCanceled && strings.Contains(pe.Message, "statement timeout")) {
		return unavailable("timed out waiting for the log's head lock (another writer is stuck)", err)
	}
	return err
}

// write runs the second round trip: the planned rows, the new head, the
// notification, COMMIT.
func (s *EventStore) write(ctx context.Context, conn *pgx.Conn, p *plan) error {
	b := &pgx.Batch{}
	if n := len(p.ev.positions); n > 0 {
		e := &p.ev
		b.Queue(sqlInsertEvents, e.positions, e.ids, e.streamKeys, e.versions, e.types, e.kinds,
			e.occurred, e.recorded, e.metadata)
		st := p.streamColumns()
		b.Queue(sqlUpsertStreams, st.keys, st.users, st.types, st.ids, st.versions, st.last, st.states)
		b.Queue(sqlUpdateHead, p.head, p.keyHead)
		b.Queue(sqlNotify, s.channel, strconv.FormatInt(p.head, 10))
	}
	if k := &p.rec; len(k.users) > 0 {
		b.Queue(sqlInsertKeys, k.users, k.keys, k.hashes, k.changed, k.active, k.states,
			k.versions, k.positions, k.created)
	}
	var tag pgconn.CommandTag
	b.Queue("COMMIT").Exec(func(ct pgconn.CommandTag) error { tag = ct; return nil })
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("commit: %w", commitLost(translate(ctx, err)))
	}
	if tag.String() != "COMMIT" {
		return fmt.Errorf("commit: the transaction was rolled back (%s): %w", tag, domain.ErrUnavailable)
	}
	return nil
}

// checkArgs are the batch's streams, keys and event ids, as arrays.
type checkArgs struct {
	users, types, ids []string
	keyUsers, keys    []string
	eventIDs          [][16]byte
}

func checkQuery(batch []*request) checkArgs {
	var q checkArgs
	for _, r := range batch {
		st := r.Req.Stream
		q.users = append(q.users, st.User.String())
		q.types = append(q.types, st.Target.Type())
		q.ids = append(q.ids, st.Target.ID())
		if rec := r.Req.Idempotency; rec != nil {
			q.keyUsers = append(q.keyUsers, rec.User.String())
			q.keys = append(q.keys, rec.Key)
		}
		if r.Decide != nil { // Rows may be none, from an earlier try
			q.eventIDs = append(q.eventIDs, r.Decide.Command.EventID)
		}
		if id, ok := r.FollowedEvent(); ok {
			q.eventIDs = append(q.eventIDs, id)
		}
		for _, e := range r.Rows {
			q.eventIDs = append(q.eventIDs, e.id)
		}
	}
	return q
}

type streamKey struct{ user, targetType, targetID string }

// streamInfo is a stream as stored: its key (0 when new), version, last
// event's position and state (domain.State's form).
type streamInfo struct {
	key, version, last int64
	state              string
}
