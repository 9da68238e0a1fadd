package logcopy

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/google/uuid"

	"github.com/interactionledger/ledger/domain"
)

// Event is one row of a log's events, as stored.
type Event struct {
	Position      int64
	ID            uuid.UUID
	StreamKey     int64
	StreamVersion int64
	Type, Kind    string
	OccurredAt    int64  // unix nanoseconds
	RecordedAt    int64  // unix nanoseconds
	Metadata      string // a JSON object; "" is stored as NULL
}

// Stream is one row of a log's streams: a (user, target) stream under the
// key its events name, and its snapshot.
type Stream struct {
	Key                        int64
	User, TargetType, TargetID string
	Version, LastPosition      int64
	State                      string // domain.State's stored form
}

// Idempotency is one idempotency record, as stored.
type Idempotency struct {
	User, Key, RequestHash string
	Changed, Active        bool
	State                  string
	StreamVersion          int64
	Position               int64
	CreatedAt              int64 // unix nanoseconds
}

// Log is what Tx.Load writes: the log's identity and its rows, streams
// in key order and events in position order.
type Log struct {
	ID          string
	Streams     iter.Seq2[Stream, error]
	Events      iter.Seq2[Event, error]
	Idempotency iter.Seq2[Idempotency, error]
}

// Moved is where a sealed log went and when.
type Moved struct {
	To string // the destination, any password shown as xxxxx
	At time.Time
}

// Message is what every refused write of a sealed log says.
func (m Moved) Message() string {
	return fmt.Sprintf("the log moved to %s at %s (ledger import log): it takes no writes here, point --db there",
		m.To, m.At.UTC().Format(time.RFC3339))
}

// Err is the error of a write to (or a writable open of) a sealed log: a
// *MovedError, which matches domain.ErrLogMoved and domain.ErrUnavailable.
func (m Moved) Err() error { return &MovedError{Moved: m} }

// MovedError is the error of a write to (or a writable open of) a sealed
// log: the commands find it (errors.As) to say where the log went in their
// own words.
type MovedError struct{ Moved Moved }

// Error is the Message, then domain.ErrLogMoved's text.
func (e *MovedError) Error() string { return e.Moved.Message() + ": " + domain.ErrLogMoved.Error() }

// Unwrap is domain.ErrLogMoved.
func (e *MovedError) Unwrap() error { return domain.ErrLogMoved }

// Sealed is a store that tells whether its log moved (both bundled stores
// do): the commands and the relay that still read a sealed log say where
// it went.
type Sealed interface {
	// Moved reports where the log went and when, when it is sealed.
	Moved(ctx context.Context) (Moved, bool, error)
}

// Store is a store a log can be copied from or into.
type Store interface {
	// BeginCopy begins a transaction that holds the log's write lock
	// (appends of every process wait or fail as for any long lock) until
	// it commits or rolls back.
	BeginCopy(ctx context.Context) (Tx, error)
}

// Tx is a transaction on one log, holding its write lock. Its reads see
// the log as the lock froze it; only one of them runs at a time.
// Every method returns the store's errors (domain.ErrUnavailable when it
// cannot serve) or ctx's.
type Tx interface {
	// LogID is the log's identity (domain.Identified).
	LogID(ctx context.Context) (string, error)
	// Head is the position of the last event, 0 when there is none.
	Head(ctx context.Context) (int64, error)
	// Empty reports whether the log holds no event, stream or
	// idempotency record.
	Empty(ctx context.Context) (bool, error)
	// Moved reports where the log went when it is sealed.
	Moved(ctx context.Context) (Moved, bool, error)
	// Streams yields every stream in key order, Events every event in
	// position order, Idempotency every record in no particular order; a
	// failure is yielded once and ends the sequence.
	Streams(ctx context.Context) iter.Seq2[Stream, error]
	Events(ctx context.Context) iter.Seq2[Event, error]
	Idempotency(ctx context.Context) iter.Seq2[Idempotency, error]
	// Load writes log into the empty log and takes its identity; it
	// consumes every sequence of log, and fails with the first error one
	// yields.
	Load(ctx context.Context, log Log) error
	// Seal records that the log moved and makes every later write of any
	// process (any build that knows no seal too) fail with m.Err's message.
	Seal(ctx context.Context, m Moved) error
	// Commit commits what Load or Seal wrote and releases the lock.
	Commit(ctx context.Context) error
	// Rollback ends the transaction without writing; after Commit it
	// does nothing.
	Rollback(ctx context.Context) error
}

// Summary is what Copy checks a copy by (two are the same log with the
// same rows when they are ==): counts, head, last event and a
// digest of every row (the sum of each row's hash, so that the order a
// store reads its rows in does not matter).
type Summary struct {
	LogID       string
	Events      int64
	Head        int64
	LastID      uuid.UUID
	Streams     int64
	Idempotency int64
	Digest      uint64
}

// String names the summary's log, head and last event.
func (s Summary) String() string {
	return fmt.Sprintf("log %s: %d events (head %d, last event %s), %d streams, %d idempotency records, digest %016x",
		s.LogID, s.Events, s.Head, s.LastID, s.Streams, s.Idempotency, s.Digest)
}

func (s *Summary) addEvent(e Event) {
	s.Events++
	s.Head, s.LastID = e.Position, e.ID
	s.Digest += rowHash('e', e.Position, e.ID[:], e.StreamKey, e.StreamVersion, e.Type, e.Kind, e.OccurredAt, e.RecordedAt, e.Metadata)
}

func (s *Summary) addStream(st Stream) {
	s.Streams++
	s.Digest += rowHash('s', st.Key, st.User, st.TargetType, st.TargetID, st.Version, st.LastPosition, st.State)
}

func (s *Summary) addIdempotency(r Idempotency) {
	s.Idempotency++
	s.Digest += rowHash('i', r.User, r.Key, r.RequestHash, r.Changed, r.Active, r.State, r.StreamVersion, r.Position, r.CreatedAt)
}

// rowHash hashes a row's values, each length-prefixed so that no two rows
// encode alike.
func rowHash(table byte, values ...any) uint64 {
	buf := make([]byte, 0, 256)
	buf = append(buf, table)
	for _, v := range values {
		switch v := v.(type) {
		case int64:
			buf = binary.BigEndian.AppendUint64(buf, uint64(v))
		case bool:
			b := byte(0)
			if v {
				b = 1
			}
			buf = append(buf, b)
		case string:
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(v)))
			buf = append(buf, v...)
		case []byte:
			buf = append(buf, v...)
		}
	}
	sum := sha256.Sum256(buf)
	return binary.BigEndian.Uint64(sum[:8])
}

// Summarize reads tx's whole log into a Summary.
func Summarize(ctx context.Context, tx Tx) (Summary, error) {
	var s Summary
	var err error
	if s.LogID, err = tx.LogID(ctx); err != nil {
		return s, err
	}
	for st, err := range tx.Streams(ctx) {
		if err != nil {
			return s, err
		}
		s.addStream(st)
	}
	for e, err := range tx.Events(ctx) {
		if err != nil {
			return s, err
		}
		s.addEvent(e)
	}
	for r, err := range tx.Idempotency(ctx) {
		if err != nil {
			return s, err
		}
		s.addIdempotency(r)
	}
	return s, nil
}

// ErrNotEmpty is the error of a copy into a log that holds something.
var ErrNotEmpty = errors.New("the destination log is not empty")

// ErrMismatch is the error of a copy whose destination, read back before
// its commit, differs from what was read from the source: nothing is
// committed.
var ErrMismatch = errors.New("the copy differs from the source")
