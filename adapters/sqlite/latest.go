package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"iter"
	"sync"
	"time"

	"github.com/interactionledger/ledger/domain"
)

// ReadLatest (domain.LatestReader) reads the log backwards, unindexed,
// from its end: the first event met of each (stream, kind) is its last, so
// its toggle is yielded at once and a bit per (stream, kind) remembers it.
// Two connections scan, each for the streams of one key parity. A GROUP BY
// in SQL made SQLite look up every event's row from the stream index, sort
// the log, then read each picked row again (~14 s of SQLite's CPU for a
// 10M-event log, against ~3.3 s for the two scans); and since the toggles
// stream out while the log is read, a rebuild writes its first folds while
// the scans go on. The streams' identities are read first (two key ranges
// on two connections) into arrays indexed by stream key (keys are dense:
// the writer takes the next one), their values interned: 8 bytes a stream,
// and one bit a stream for each kind.

// latestScan reads the log from its end, unindexed: in rowid order,
// backwards, so the log's pages are read once each.
const latestScan = `SELECT position, stream_key, CASE type WHEN ? THEN 1 WHEN ? THEN 0 ELSE type END, kind, occurred_at
	FROM events NOT INDEXED WHERE position <= ? AND stream_key % ? = ? ORDER BY position DESC`

// ReadLatest yields the toggle of the last event at a position <= upTo of
// each (stream, kind) (domain.LatestReader), newest first within each
// parity of stream keys, the two interleaved by chunk. A failure
// ends it with domain.ErrUnavailable on storage faults, domain.ErrClosed
// after Close, or ctx's error.
func (s *EventStore) ReadLatest(ctx context.Context, upTo int64) iter.Seq2[domain.Toggle, error] {
	return domain.Emitting("read latest events", func(emit func(domain.Toggle) bool) error {
		return s.readLatest(ctx, upTo, emit)
	})
}

// errStopped ends a scan whose consumer asked to stop.
var errStopped = errors.New("stopped")

func (s *EventStore) readLatest(ctx context.Context, upTo int64, emit func(domain.Toggle) bool) error {
	if err := s.usable(); err != nil {
		return err
	}
	// Bound the scan by a committed position read before the streams:
	// every stream with an event at or before it has its row by then.
	last, err := s.LastPosition(ctx)
	if err != nil {
		return err
	}
	ids, err := readIdentities(ctx, s.read)
	if err == nil {
		err = ids.scanParts(ctx, s.read, min(upTo, last), emit)
	}
	if err == nil || errors.Is(err, errStopped) {
		return nil
	}
	return s.readError(translateCtx(ctx, err))
}

// latestParts is how many connections scan the log at once, each for the
// streams of one key parity: the scan's stepping and decoding take two
// cores' worth, while the toggles are folded and written.
const latestParts = 2

// scanParts runs the scans of the parts on their own goroutines and emits
// what they send, in chunks, on the caller's.
func (ids *identities) scanParts(ctx context.Context, db *sql.DB, upTo int64, emit func(domain.Toggle) bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan []domain.Toggle, 2*latestParts)
	errs := make([]error, latestParts)
	var wg sync.WaitGroup
	for part := range latestParts {
		wg.Go(func() {
			if errs[part] = ids.scan(ctx, db, upTo, part, chunks); errs[part] != nil {
				cancel() // the other part need not finish
			}
		})
	}
	go func() {
		wg.Wait()
		close(chunks)
	}()
	stopped := false
	for c := range chunks {
		for _, t := range c {
			if !stopped && !emit(t) {
				stopped = true
				cancel()
			}
		}
	}
	if stopped {
		return errStopped
	}
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err // the cause, not the other part's cancellation
		}
	}
	return errors.Join(errs...) // none, or the caller's cancellation
}

// identities are the streams' users and targets, interned, by stream key.
type identities struct {
	user, target []int32 // by stream key; -1: no row
	users        []domain.UserID
	targets      []domain.Target
}

// readIdentities reads the streams table, a range of keys for each part
// on its own connection.
func readIdentities(ctx context.Context, db *sql.DB) (*identities, error) {
	var maxKey int64
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(stream_key), 0) FROM streams`).Scan(&maxKey); err != nil {
		return nil, err
	}
	ids := &identities{user: make([]int32, maxKey+1), target: make([]int32, maxKey+1)}
	for i := range ids.user {
		ids.user[i], ids.target[i] = -1, -1
	}
	parts := make([]identities, latestParts) // each part's interned values
	bounds := func(i int) int64 { return maxKey * int64(i) / latestParts }
	errs := make([]error, latestParts)
	var wg sync.WaitGroup
	for i := range parts {
		wg.Go(func() { errs[i] = ids.read(ctx, db, bounds(i), bounds(i+1), &parts[i]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// Number each part's values after the parts before it.
	for i, p := range parts {
		userOff, targetOff := int32(len(ids.users)), int32(len(ids.targets))
		for key := bounds(i) + 1; key <= bounds(i+1); key++ {
			if ids.user[key] >= 0 {
				ids.user[key] += userOff
				ids.target[key] += targetOff
			}
		}
		ids.users, ids.targets = append(ids.users, p.users...), append(ids.targets, p.targets...)
	}
	return ids, nil
}

// read reads the streams with keys in (lo, hi], interning their values
// into part.
func (ids *identities) read(ctx context.Context, db *sql.DB, lo, hi int64, part *identities) error {
	users := map[string]int32{}
	targets := map[[2]string]int32{}
	return rawRows(ctx, db, `SELECT stream_key, user_id, target_type, target_id FROM streams WHERE stream_key > ? AND stream_key <= ?`,
		[]any{lo, hi}, 4, func(v []driver.Value) error {
			key, user, tk := v[0].(int64), v[1].(string), [2]string{v[2].(string), v[3].(string)}
			u, ok := users[user]
			if !ok {
				id, err := domain.NewUserID(user)
				if err != nil {
					return domain.StoredError(fmt.Sprintf("stream %d: stored user", key), err)
				}
				u = int32(len(part.users))
				users[user], part.users = u, append(part.users, id)
			}
			t, ok := targets[tk]
			if !ok {
				target, err := domain.NewTarget(tk[0], tk[1])
				if err != nil {
					return domain.StoredError(fmt.Sprintf("stream %d: stored target", key), err)
				}
				t = int32(len(part.targets))
				targets[tk], part.targets = t, append(part.targets, target)
			}
			ids.user[key], ids.target[key] = u, t
			return nil
		})
}

// stream returns the identity of the stream with key key.
func (ids *identities) stream(key int64) (domain.StreamID, bool) {
	if key < 0 || key >= int64(len(ids.user)) || ids.user[key] < 0 {
		return domain.StreamID{}, false
	}
	return domain.StreamID{User: ids.users[ids.user[key]], Target: ids.targets[ids.target[key]]}, true
}

// seenKind is, for one kind, a bit per stream key: its last toggle was met.
type seenKind struct {
	kind domain.Kind
	bits []uint64
}

// scan reads the log backwards up to upTo and sends, in chunks, the first
// toggle met of each (stream, kind) of its part's streams.
func (ids *identities) scan(ctx context.Context, db *sql.DB, upTo int64, part int, chunks chan<- []domain.Toggle) error {
	kinds := map[string]*seenKind{}
	words := (len(ids.user) + 63) / 64
	buf := make([]domain.Toggle, 0, readChunk)
	send := func() error {
		select {
		case chunks <- buf:
			buf = make([]domain.Toggle, 0, readChunk)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	args := []any{string(domain.EventAdded), string(domain.EventCancelled), upTo, int64(latestParts), int64(part)}
	err := rawRows(ctx, db, latestScan, args, 5, func(v []driver.Value) error {
		pos, key, name, at := v[0].(int64), v[1].(int64), v[3].(string), v[4].(int64)
		seen, ok := kinds[name]
		if !ok {
			k, err := domain.ParseKind(name)
			if err != nil {
				return domain.StoredError(fmt.Sprintf("event %d: stored kind", pos), err)
			}
			seen = &seenKind{kind: k, bits: make([]uint64, words)}
			kinds[name] = seen
		}
		stream, ok := ids.stream(key)
		if !ok {
			return fmt.Errorf("event %d: stream %d has no row: %w", pos, key, domain.ErrUnavailable)
		}
		on, ok := v[2].(int64)
		if !ok {
			_, err := domain.ParseEventType(fmt.Sprint(v[2]))
			return domain.StoredError(fmt.Sprintf("event %d: stored type", pos), err)
		}
		word, bit := key/64, uint64(1)<<(key%64)
		if seen.bits[word]&bit != 0 {
			return nil // a later toggle of this (stream, kind) was met
		}
		seen.bits[word] |= bit
		buf = append(buf, domain.Toggle{Stream: stream, Kind: seen.kind, On: on == 1, Position: pos, OccurredAt: time.Unix(0, at).UTC()})
		if len(buf) == readChunk {
			return send()
		}
		return nil
	})
	if err == nil && len(buf) > 0 {
		err = send()
	}
	return err
}

// readChunk is how many toggles a scan hands over at once.
const readChunk = 1024

// rawRows runs q with args on a connection of db through the driver,
// without database/sql's per-row conversion and allocations, and calls
// each with every row's ncol values (valid until the next row).
func rawRows(ctx context.Context, db *sql.DB, q string, args []any, ncol int, each func([]driver.Value) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		qc, ok := dc.(driver.QueryerContext)
		if !ok {
			return fmt.Errorf("driver connection %T runs no Query with a context", dc)
		}
		rows, err := qc.QueryContext(ctx, q, numbered(make([]driver.NamedValue, len(args)), args))
		if err != nil {
			return err
		}
		defer rows.Close()
		dest := make([]driver.Value, ncol)
		for {
			if err := rows.Next(dest); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			if err := each(dest); err != nil {
				return err
			}
		}
	})
}
