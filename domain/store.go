package domain

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/google/uuid"
)

// Snapshot is the per-stream state a store keeps beside the log, so that
// deciding never re-reads a stream's history.
type Snapshot struct {
	Version      int64 // stream version of the last event; 0 when empty
	LastPosition int64 // position of the last event; 0 when empty
	State        State
}

// Outcome is the result of one command, as returned to the caller and as
// recorded under an idempotency key.
type Outcome struct {
	Changed       bool
	Active        bool  // whether the command's kind is on afterwards
	State         State // every kind of the stream afterwards
	StreamVersion int64
	Position      int64 // the appended event's position, or the stream's last
}

// IdempotencyRecord ties (User, Key) to the first outcome of a request.
type IdempotencyRecord struct {
	User        UserID
	Key         string
	RequestHash string
	Outcome     Outcome
	CreatedAt   time.Time
}

// AppendRequest appends Events to Stream if the stream is still at
// ExpectedVersion, stores State as the stream's new snapshot, and, when
// Idempotency is set, records it in the same transaction. Events may be
// empty when only an idempotency record is to be written (a command that
// changed nothing). The store sets Idempotency.Outcome.Position to the
// position of the last appended event before recording it.
type AppendRequest struct {
	Stream          StreamID
	ExpectedVersion int64
	Events          []Event
	State           State
	Idempotency     *IdempotencyRecord
}

// Validate checks what every store requires of an append: a stream, an
// expected version >= 0, a complete idempotency record if any, and events
// of that stream at the consecutive versions after ExpectedVersion, each
// with an id, a kind, a time and a known type. It returns a
// *ValidationError naming the first problem.
func (r AppendRequest) Validate() error {
	switch {
	case r.Stream.User.IsZero() || r.Stream.Target.IsZero():
		return invalid("stream", "user and target are required")
	case r.ExpectedVersion < 0:
		return invalid("expected_version", "must be >= 0, got %d", r.ExpectedVersion)
	case r.Idempotency != nil && (r.Idempotency.User.IsZero() || r.Idempotency.Key == ""):
		return invalid("idempotency", "user and key are required")
	}
	for i, e := range r.Events {
		want := r.ExpectedVersion + int64(i) + 1
		switch {
		case e.Stream() != r.Stream:
			return invalid("event", "%d belongs to stream %s", i, e.Stream())
		case e.StreamVersion != want:
			return invalid("event", "%d has version %d, want %d", i, e.StreamVersion, want)
		case e.ID == uuid.Nil:
			return invalid("event", "%d has no id", i)
		case e.Kind.IsZero():
			return invalid("event", "%d has no kind", i)
		case e.OccurredAt.IsZero():
			return invalid("event", "%d has no occurred_at", i)
		}
		if err := ValidateEventTime("occurred_at", e.OccurredAt); err != nil {
			return err
		}
		if err := checkEntries(e.Metadata.m); err != nil {
			return err
		}
		if _, err := ParseEventType(string(e.Type)); err != nil {
			return err
		}
		// The stored state must agree with the events: a kind's last
		// event of the request decides whether it is on.
		if !slices.ContainsFunc(r.Events[i+1:], func(later Event) bool { return later.Kind == e.Kind }) && r.State.Active(e.Kind) != e.On() {
			return invalid("state", "kind %s is %s in the state, but event %d (%s) leaves it %s",
				e.Kind, onOff(r.State.Active(e.Kind)), i, e.Type, onOff(e.On()))
		}
	}
	return nil
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// AppendResult tells where an append landed.
type AppendResult struct {
	// LastPosition is the position of the last appended event, or 0 when
	// no event was appended.
	LastPosition int64
	RecordedAt   time.Time
}

// EventFilter selects events for history reads. Zero fields match all.
type EventFilter struct {
	After      int64  // only positions > After
	Limit      int    // at most Limit events; 0 means no limit
	User       UserID // only this user's events
	TargetType string // only targets of this type
	TargetID   string // only targets with this id (of TargetType, or of any type without it)
	Kind       Kind   // only this kind
	Since      time.Time
	Until      time.Time // OccurredAt in [Since, Until); see OccurredNanos
}

// Validate checks f: After and Limit >= 0. It returns a
// *ValidationError; the stores' ReadEvents yield it.
func (f EventFilter) Validate() error {
	switch {
	case f.After < 0:
		return invalid("after", "must be >= 0, got %d", f.After)
	case f.Limit < 0:
		return invalid("limit", "must be >= 0 (0: no limit), got %d", f.Limit)
	}
	return nil
}

// CommandStore is what the command service (Ledger) needs of the log: a
// stream's snapshot, idempotency records, and atomic appends.
type CommandStore interface {
	// Append appends atomically. It returns ErrVersionConflict when the
	// stream moved, ErrDuplicateEvent when an event id exists,
	// ErrIdempotencyKeyTaken when (user, key) is already recorded,
	// ErrUnavailable on storage faults and the context's error when ctx
	// ends before the append was committed (in which case nothing of it
	// is written).
	Append(ctx context.Context, req AppendRequest) (AppendResult, error)
	// Snapshot returns a stream's snapshot (zero for an unknown stream).
	Snapshot(ctx context.Context, stream StreamID) (Snapshot, error)
	// Idempotency returns the record for (user, key) and whether it exists.
	Idempotency(ctx context.Context, user UserID, key string) (IdempotencyRecord, bool, error)
	// HasEvent reports whether an event with this id is stored.
	HasEvent(ctx context.Context, id uuid.UUID) (bool, error)
}

// DecideRequest asks a DecidingStore to decide Command against the
// stream as its write transaction finds it, and to append the event if
// the command changes the stream. Command.EventID is the id the event
// gets. ExpectedVersion, when not nil, fails the request unless the stream
// is at that version. Idempotency, when set, is recorded in the same
// transaction with the decided outcome (the store fills its Outcome).
// Follows, when set, is a command of the same stream that the same store
// queued before this one (QueueingStore.QueueDecide): this one is then
// decided only when that one's event is in the log, appended by it or
// stored before (a store's writer looks its id up: an import run again;
// DecideThenAppend takes only the first), and otherwise fails with
// ErrFollowedNotAppended, checked after ExpectedVersion (a stream at the
// expected version may hold another writer's event there).
type DecideRequest struct {
	Command         Command
	ExpectedVersion *int64
	Idempotency     *IdempotencyRecord
	Follows         Queued
}

// Candidate checks what a store requires of a decided command and returns
// the append the command makes of a new stream: its one event at version
// 1, and the state it leaves. A store that decides later moves the
// event's version to the stream's next, or drops it when the stream is
// already in the asked state. It returns a *ValidationError for a command
// without an event id, an expected version below 0, or an event that
// AppendRequest.Validate refuses.
func (r DecideRequest) Candidate() (AppendRequest, error) {
	switch {
	case r.Command.EventID == uuid.Nil:
		return AppendRequest{}, invalid("event", "the command has no event id")
	case r.ExpectedVersion != nil && *r.ExpectedVersion < 0:
		return AppendRequest{}, invalid("expected_version", "must be >= 0, got %d", *r.ExpectedVersion)
	}
	c := r.Command
	off := State{}.With(c.Kind, !c.On)
	events := Decide(off, 0, c)
	cand := AppendRequest{Stream: c.Stream, Events: events, State: Evolve(off, events[0]), Idempotency: r.Idempotency}
	return cand, cand.Validate()
}

// DecidingStore is a CommandStore that decides a command and appends its
// event in one call. Both stores decide inside their write transaction:
// they read the stream's snapshot there, apply Decided, and append the
// event if there is one, so Set needs no Snapshot read before the append
// and meets no version conflict from other writers of the same log.
// Wrappers of stores that cannot decide where they append answer with
// DecideThenAppend. Decide returns the outcome; ErrIdempotencyKeyTaken
// when Idempotency's key is recorded, checked before the expected version
// (the request that recorded it may have moved the stream);
// ErrPreconditionFailed when the stream is not at ExpectedVersion; and
// otherwise Append's errors (ErrVersionConflict only from
// DecideThenAppend, which Ledger.Set retries).
type DecidingStore interface {
	CommandStore
	Decide(ctx context.Context, req DecideRequest) (Outcome, error)
}

// QueueingStore is a DecidingStore that takes decided commands without
// waiting for their commits: QueueDecide queues req behind every command
// queued before it and returns; wait returns its outcome and error
// (Decide's) once the commit that wrote it is durable. The commands one
// goroutine queues are decided and appended in the order it queued them,
// so their positions follow that order, and those in flight share group
// commits (one fsync for many). A command that is still queued when ctx
// ends is not written (Wait returns ctx's error). A command that Follows
// another of its stream is queued at once, behind it: the store's writer
// checks that one's outcome when it decides this one, so that the two may
// share a commit.
type QueueingStore interface {
	DecidingStore
	QueueDecide(ctx context.Context, req DecideRequest) (Queued, error)
}

// Queued is a command a QueueingStore queued.
type Queued interface {
	// Wait returns the command's outcome and error (Decide's) once the
	// commit that wrote it is durable. A second call returns the same.
	Wait() (Outcome, error)
}

// QueueDecideIn queues req in store when it is a QueueingStore; otherwise
// it decides req at once (DecideIn), and Wait returns that outcome.
func QueueDecideIn(ctx context.Context, store CommandStore, req DecideRequest) (Queued, error) {
	if qs, ok := store.(QueueingStore); ok {
		return qs.QueueDecide(ctx, req)
	}
	out, err := DecideIn(ctx, store, req)
	return Answered(out, err), nil
}

// Answered is a Queued already decided: Wait returns out and err.
func Answered(out Outcome, err error) Queued { return answered{out, err} }

type answered struct {
	out Outcome
	err error
}

func (a answered) Wait() (Outcome, error) { return a.out, a.err }

// DecideIn decides req in store: by its Decide when it is a DecidingStore,
// else by DecideThenAppend.
func DecideIn(ctx context.Context, store CommandStore, req DecideRequest) (Outcome, error) {
	if ds, ok := store.(DecidingStore); ok {
		return ds.Decide(ctx, req)
	}
	return DecideThenAppend(ctx, store, req)
}

// DecideThenAppend decides req against the stream's snapshot (Snapshot)
// and appends at the snapshot's version, so that a stream moved in between
// fails with ErrVersionConflict. A command that changes nothing and
// records no idempotency key appends nothing.
func DecideThenAppend(ctx context.Context, store CommandStore, req DecideRequest) (Outcome, error) {
	c := req.Command
	snap, err := store.Snapshot(ctx, c.Stream)
	if err != nil {
		return Outcome{}, err
	}
	if req.ExpectedVersion != nil && *req.ExpectedVersion != snap.Version {
		return Outcome{}, staleVersion(ctx, store, req, snap)
	}
	if req.Follows != nil && !followedAppended(req.Follows) {
		return Outcome{}, fmt.Errorf("decide %s: %w", c.Stream, ErrFollowedNotAppended)
	}
	events, out := Decided(snap, c)
	rec := req.Idempotency
	if len(events) == 0 && rec == nil {
		return out, nil
	}
	if rec != nil {
		rec.Outcome = out
	}
	res, err := store.Append(ctx, AppendRequest{
		Stream: c.Stream, ExpectedVersion: snap.Version,
		Events: events, State: out.State, Idempotency: rec,
	})
	if err != nil {
		return Outcome{}, err
	}
	if res.LastPosition > 0 {
		out.Position = res.LastPosition
	}
	return out, nil
}

// followedAppended reports whether a command decided before appended its
// event: DecideThenAppend's check of Follows, where the command followed
// is decided already (the store has no writer to queue it).
func followedAppended(q Queued) bool {
	out, err := q.Wait()
	return err == nil && out.Changed
}

// staleVersion is DecideThenAppend's answer to a request whose stream is
// at snap, not at its expected version: ErrIdempotencyKeyTaken when its key
// is recorded (the request that recorded it may be what moved the stream,
// and Ledger.Set then replays that outcome, as the deciding stores answer
// it), else a *StaleVersionError.
func staleVersion(ctx context.Context, store CommandStore, req DecideRequest, snap Snapshot) error {
	if rec := req.Idempotency; rec != nil {
		if _, taken, err := store.Idempotency(ctx, rec.User, rec.Key); err != nil {
			return err
		} else if taken {
			return fmt.Errorf("key %q: %w", rec.Key, ErrIdempotencyKeyTaken)
		}
	}
	return &StaleVersionError{Expected: *req.ExpectedVersion, Stream: snap}
}

// EventReader is what readers of the log need: projections, history
// exports, tailers.
type EventReader interface {
	// ReadEvents yields the events matching f in position order,
	// streaming (constant memory). A failure is yielded once, as the
	// error of a zero Event, and ends the sequence; a consumer that stops
	// early releases what the read holds.
	ReadEvents(ctx context.Context, f EventFilter) iter.Seq2[Event, error]
	// LastPosition returns the position of the newest committed event.
	LastPosition(ctx context.Context) (int64, error)
}

// Tailable is a log that can be followed: an EventReader that also
// signals commits.
type Tailable interface {
	EventReader
	// Committed returns a channel that is closed at the next commit the
	// store learns of. Readers take it before reading, so no commit is
	// missed.
	Committed() <-chan struct{}
}

// Identified is a log that names itself. Positions mean something only
// within one log: position 500 of a log created yesterday and of one
// created today are two different events. LogID is set when the log is
// created and kept for its whole life, by copies of its files too; another
// log, even one at the same path, has another. Readers that keep positions
// (a views file's checkpoints, a client's session position, an ETag, a
// relay's stream) keep the LogID beside them, so that positions of another
// log are told from positions not reached yet.
type Identified interface {
	// LogID is the log's identity, a UUID in its canonical text form.
	LogID() string
}

// LogIDOf returns r's LogID, or "" when r does not name itself (a test
// double).
func LogIDOf(r any) string {
	if id, ok := r.(Identified); ok {
		return id.LogID()
	}
	return ""
}

// Clocked is implemented by stores whose events are recorded by a clock
// other than this process's: PostgreSQL records recorded_at by the
// database server's clock, one clock for every node of a cluster. Now
// reads that clock.
type Clocked interface {
	Now(ctx context.Context) (time.Time, error)
}

// NowOf is the time by the clock r records events by: r's own (Clocked),
// else this process's.
func NowOf(ctx context.Context, r any) (time.Time, error) {
	if c, ok := r.(Clocked); ok {
		return c.Now(ctx)
	}
	return time.Now(), nil
}

// EventStore is the whole port to the append-only log, the source of
// truth: what one store implements. Consumers take the smaller interfaces
// above. Implementations are safe for concurrent use and pass the
// contract suite in adapters/storetest.
type EventStore interface {
	CommandStore
	Tailable
	Identified
}

// LatestReader is implemented by stores that can hand a projection rebuild
// only what the current state depends on: for each (stream, kind), its
// last toggle (the last event at a position <= upTo, as a Toggle). A
// rebuild from an empty table needs nothing else, so a store that picks
// them itself saves the rebuild from reading and decoding the whole log.
// Toggles come in no particular order, each (stream, kind) at most once; a
// failure ends the sequence as in ReadEvents.
type LatestReader interface {
	ReadLatest(ctx context.Context, upTo int64) iter.Seq2[Toggle, error]
}

// RecentReader is implemented by stores that keep the events of their own
// latest commits in memory, so that a tail following the log's end reads
// them without a query. AppendRecent appends to dst up to limit events
// after position after, in position order, and reports true when it holds
// the store's own commits from after+1 on (the events appended may then be
// none: nothing this store committed follows after). Otherwise it returns
// dst unchanged and false, and the caller reads the log. What it appends
// is a prefix of what ReadEvents with the same After yields: the log may
// already hold later events that it does not (another process's commits),
// which a tail finds when it next reads the log.
type RecentReader interface {
	AppendRecent(dst []Event, after int64, limit int) ([]Event, bool)
}

// EventAt reads the log's event at pos: a zero Event when the log holds
// none there (a position beyond its head, or one it never had).
func EventAt(ctx context.Context, r EventReader, pos int64) (Event, error) {
	for e, err := range r.ReadEvents(ctx, EventFilter{After: pos - 1, Limit: 1}) {
		if err != nil || e.Position != pos {
			return Event{}, err
		}
		return e, nil
	}
	return Event{}, nil
}

// AppendEvents appends the events (or toggles) of seq to buf and returns
// it, or the sequence's error: for readers that want a batch in memory.
func AppendEvents[T Event | Toggle](buf []T, seq iter.Seq2[T, error]) ([]T, error) {
	for e, err := range seq {
		if err != nil {
			return buf, err
		}
		buf = append(buf, e)
	}
	return buf, nil
}

// Emitting returns the sequence of what run emits (run stops when emit
// returns false) followed, when run fails, by its error as "op: err": the
// stores' reads (and their copies' rows) are written as emitting loops.
func Emitting[T any](op string, run func(emit func(T) bool) error) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		if err := run(func(v T) bool { return yield(v, nil) }); err != nil {
			var zero T
			yield(zero, fmt.Errorf("%s: %w", op, err))
		}
	}
}
