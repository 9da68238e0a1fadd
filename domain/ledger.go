package domain

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// MaxIdempotencyKeyLen bounds idempotency keys.
const MaxIdempotencyKeyLen = 128

// SetRequest asks the Ledger to turn Kind on or off for (User, Target).
type SetRequest struct {
	User   UserID
	Target Target
	Kind   Kind
	On     bool
	// IdempotencyKey, when not empty, makes a retried request return its
	// first outcome without appending.
	IdempotencyKey string
	// ExpectedVersion, when not nil, fails the request with
	// ErrPreconditionFailed unless the stream is at that version.
	ExpectedVersion *int64
	// Metadata is the caller's, from NewMetadata: it holds no reserved key.
	Metadata Metadata
	// RequestID is stored in the event's metadata under MetaRequestID;
	// unlike Metadata it is not part of the idempotency fingerprint, since
	// every retry carries a new one.
	RequestID string
}

// LedgerConfig configures a Ledger. The zero value is usable.
type LedgerConfig struct {
	// MaxRetries bounds how often a version conflict is retried.
	MaxRetries int
	// Now returns the current time (OccurredAt of new events).
	Now func() time.Time
}

// Ledger is the command service: it validates a command and hands it to
// the store's Decide, which decides it against the stream inside the
// transaction that appends its event (DecideIn; over a store that cannot,
// DecideThenAppend decides against the stream's snapshot and appends at
// its version). It is safe for concurrent use.
type Ledger struct {
	store CommandStore
	kinds KindSet
	cfg   LedgerConfig
	log   *slog.Logger
	locks streamLocks
}

// streamLockStripes is how many locks the streams of one Ledger share.
const streamLockStripes = 1024

// streamLocks serialises the commands of one stream within a process. Over
// a store without Decide (DecideThenAppend) they would otherwise conflict
// and retry against each other (32 goroutines toggling one pair could
// exhaust the retries), and conflicts then come only from other
// processes; a DecidingStore meets no conflicts. Streams that share a
// stripe wait for each other's append, which at 1024 stripes is rare.
type streamLocks struct {
	seed    maphash.Seed
	stripes [streamLockStripes]sync.Mutex
}

// lock locks the stripe of stream and returns its unlock.
func (l *streamLocks) lock(stream StreamID) func() {
	var h maphash.Hash
	h.SetSeed(l.seed)
	h.WriteString(stream.User.String())
	h.WriteByte(0)
	h.WriteString(stream.Target.String())
	m := &l.stripes[h.Sum64()%streamLockStripes]
	m.Lock()
	return m.Unlock
}

// NewLedger returns a Ledger over store for the configured kinds. A nil
// logger discards. Without a store (nil), every write answers
// ErrInvalidInput.
func NewLedger(store CommandStore, kinds KindSet, cfg LedgerConfig, log *slog.Logger) *Ledger {
	if cfg.MaxRetries <= 0 {
		cfg.MaxRetries = 8
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Ledger{store: store, kinds: kinds, cfg: cfg, log: log, locks: streamLocks{seed: maphash.MakeSeed()}}
}

// Kinds returns the configured kinds.
func (l *Ledger) Kinds() KindSet { return l.kinds }

// Set turns a kind on or off and returns the outcome once the event (if
// any) is durable. Errors: *ValidationError, ErrUnknownKind,
// ErrPreconditionFailed, ErrIdempotencyMismatch, ErrVersionConflict (after
// the retries, only over a store without Decide), ErrUnavailable, or the
// context's error.
func (l *Ledger) Set(ctx context.Context, req SetRequest) (Outcome, error) {
	if err := l.validate(req); err != nil {
		return Outcome{}, err
	}
	hash := req.hash()
	defer l.locks.lock(StreamID{req.User, req.Target})()
	for attempt := 0; ; attempt++ {
		out, err := l.try(ctx, req, hash)
		if errors.Is(err, ErrIdempotencyKeyTaken) {
			// Another request with the same key won the race.
			return l.replay(ctx, req, hash)
		}
		if !errors.Is(err, ErrVersionConflict) || req.ExpectedVersion != nil || attempt >= l.cfg.MaxRetries {
			if errors.Is(err, ErrVersionConflict) && req.ExpectedVersion != nil {
				return Outcome{}, fmt.Errorf("set %s: %w", StreamID{req.User, req.Target}, ErrPreconditionFailed)
			}
			return out, err
		}
		l.log.DebugContext(ctx, "retrying after version conflict", "attempt", attempt+1)
		if err := backoff(ctx, attempt); err != nil {
			return Outcome{}, err
		}
	}
}

// maxBackoff caps the wait before a retry.
const maxBackoff = 16 * time.Millisecond

// backoff waits a random time below min(1ms·2^attempt, maxBackoff) before
// retrying a conflicting append. Without it, writers contending for one
// stream retry in lockstep and each round only one of them wins: 32
// goroutines toggling one pair exhausted 8 retries on a loaded machine.
// It returns ctx's error if ctx ends first.
func backoff(ctx context.Context, attempt int) error {
	limit := min(time.Millisecond<<min(attempt, 10), maxBackoff)
	t := time.NewTimer(rand.N(limit) + 1)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ImportResult is what Import did with one command.
type ImportResult int

const (
	// Imported: the event was appended.
	Imported ImportResult = iota + 1
	// AlreadyImported: an event with the command's id is stored (a re-run).
	AlreadyImported
	// ImportConflict: the stream is not where the imported history left
	// it (at version after, with the command changing its state): it holds
	// events that history did not write, and appending the older event
	// after them would rewrite the stream's present. Nothing is appended.
	ImportConflict
)

// Import appends the event of cmd, with its id and time, as the stream's
// event after version after: the number of events the imported history
// wrote to that stream before this one. It is how history from other
// systems enters the ledger. An event whose id is stored is not appended
// again (AlreadyImported); a stream at another version, or whose state
// cmd would not change, is an ImportConflict.
func (l *Ledger) Import(ctx context.Context, cmd Command, after int64) (ImportResult, error) {
	if err := l.validateImport(cmd, after); err != nil {
		return 0, err
	}
	exists, err := l.store.HasEvent(ctx, cmd.EventID)
	if err != nil {
		return 0, err
	}
	if exists {
		return AlreadyImported, nil
	}
	if cmd.OccurredAt.IsZero() {
		cmd.OccurredAt = l.cfg.Now().UTC()
	}
	defer l.locks.lock(cmd.Stream)()
	for attempt := 0; ; attempt++ {
		snap, err := l.store.Snapshot(ctx, cmd.Stream)
		if err != nil {
			return 0, err
		}
		events := Decide(snap.State, snap.Version, cmd)
		if snap.Version != after || len(events) == 0 {
			return ImportConflict, nil
		}
		_, err = l.store.Append(ctx, AppendRequest{
			Stream: cmd.Stream, ExpectedVersion: snap.Version,
			Events: events, State: Evolve(snap.State, events[0]),
		})
		switch {
		case errors.Is(err, ErrDuplicateEvent):
			return AlreadyImported, nil
		case errors.Is(err, ErrVersionConflict) && attempt < l.cfg.MaxRetries:
			if err := backoff(ctx, attempt); err != nil {
				return 0, err
			}
			continue
		case err != nil:
			return 0, err
		}
		return Imported, nil
	}
}

// QueuedImport is an import QueueImport queued.
type QueuedImport interface {
	// Wait returns Import's result once the command is durable or
	// refused. A second call returns the same.
	Wait() (ImportResult, error)
}

// QueueImport is Import without waiting for the append, over a
// QueueingStore (else it imports at once): it queues cmd, decided in the
// store at expected version after, and returns it, queued; its Wait
// returns Import's result. The commands one goroutine queues are appended
// in that order, many to a commit. follows, when not nil, is the import
// QueueImport queued last for cmd's stream, whose event after counts:
// cmd is then appended only after that one's event (and is a conflict
// when that one was), though the stream be at after, since another
// writer's event may stand there. Use a QueuedImport from the goroutine
// that queued it.
func (l *Ledger) QueueImport(ctx context.Context, cmd Command, after int64, follows QueuedImport) (QueuedImport, error) {
	prev, ok := follows.(*queuedImport)
	if follows != nil && (!ok || prev.l != l) {
		return nil, fmt.Errorf("import %s: follows an import this ledger did not queue", cmd.Stream)
	}
	if err := l.validateImport(cmd, after); err != nil {
		return nil, err
	}
	if cmd.OccurredAt.IsZero() {
		cmd.OccurredAt = l.cfg.Now().UTC()
	}
	q := &queuedImport{l: l, ctx: ctx, cmd: cmd, after: after, follows: prev}
	qs, ok := l.store.(QueueingStore)
	if !ok {
		q.res, q.err = q.importAfterFollowed()
		q.done, q.follows = true, nil
		return q, nil
	}
	req := DecideRequest{Command: cmd, ExpectedVersion: &after}
	if prev != nil {
		req.Follows = prev.queued
	}
	queued, err := qs.QueueDecide(ctx, req)
	if err != nil {
		return nil, err
	}
	q.queued = queued
	return q, nil
}

// queuedImport is QueueImport's QueuedImport: queued in the store, or,
// over a store that does not queue, imported already (done).
type queuedImport struct {
	l       *Ledger
	ctx     context.Context
	cmd     Command
	after   int64
	follows *queuedImport
	queued  Queued
	done    bool
	res     ImportResult
	err     error
}

func (q *queuedImport) Wait() (ImportResult, error) {
	if !q.done {
		q.res, q.err = q.result()
		q.done, q.follows = true, nil // a stream's imports done need not stay reachable
	}
	return q.res, q.err
}

// result waits for the queued command and tells Import's result from its
// outcome.
func (q *queuedImport) result() (ImportResult, error) {
	out, err := q.queued.Wait()
	switch {
	case err == nil && out.Changed:
		return Imported, nil
	case errors.Is(err, ErrDuplicateEvent):
		return AlreadyImported, nil
	case errors.Is(err, ErrFollowedNotAppended):
		// The one it follows was imported before (a re-run), or not at all.
		return q.importAfterFollowed()
	case err == nil || errors.Is(err, ErrPreconditionFailed):
		return q.l.importedBefore(q.ctx, q.cmd.EventID)
	}
	return 0, err
}

// importAfterFollowed imports q at once, once the import it follows is
// done: a conflict when that one was, a failure when it failed.
func (q *queuedImport) importAfterFollowed() (ImportResult, error) {
	if q.follows != nil {
		switch r, err := q.follows.Wait(); {
		case err != nil:
			return 0, fmt.Errorf("import %s: the import before it failed: %w", q.cmd.Stream, err)
		case r == ImportConflict:
			return ImportConflict, nil
		}
	}
	return q.l.Import(q.ctx, q.cmd, q.after)
}

// importedBefore tells a command that was not appended (its stream was
// not at its version, or it would not change it) from one imported
// before: an event with its id is stored.
func (l *Ledger) importedBefore(ctx context.Context, id uuid.UUID) (ImportResult, error) {
	exists, err := l.store.HasEvent(ctx, id)
	switch {
	case err != nil:
		return 0, err
	case exists:
		return AlreadyImported, nil
	}
	return ImportConflict, nil
}

// validateImport checks an imported command as validate checks a SetRequest.
func (l *Ledger) validateImport(cmd Command, after int64) error {
	if err := l.validateInteraction(cmd.Stream.User, cmd.Stream.Target, cmd.Kind); err != nil {
		return err
	}
	switch {
	case cmd.EventID == uuid.Nil:
		return invalid("event_id", "required: an import is kept idempotent by it")
	case after < 0:
		return invalid("after", "must be >= 0, got %d", after)
	}
	return nil
}

func (l *Ledger) validate(req SetRequest) error {
	if err := l.validateInteraction(req.User, req.Target, req.Kind); err != nil {
		return err
	}
	if req.ExpectedVersion != nil && *req.ExpectedVersion < 0 {
		return invalid("expected_version", "must be >= 0")
	}
	for _, k := range reservedKeys {
		if _, ok := req.Metadata.Get(k); ok {
			return invalid("metadata", "key %q is reserved: the ledger sets it", k)
		}
	}
	// Stored in the event's metadata (withKey), which must decode back.
	if err := checkEntry(MetaRequestID, req.RequestID); err != nil {
		return err
	}
	return ValidateIdempotencyKey(req.IdempotencyKey)
}

// validateInteraction checks what a write and an import both name: a user,
// a target (both addressable by path, CheckAddressable) and a configured
// kind.
func (l *Ledger) validateInteraction(user UserID, target Target, kind Kind) error {
	switch {
	case l.store == nil:
		return fmt.Errorf("ledger: no store to write to: %w", ErrInvalidInput)
	case user.IsZero():
		return invalid("user", "required")
	case target.IsZero():
		return invalid("target", "required")
	case kind.IsZero():
		return invalid("kind", "required")
	case !l.kinds.Has(kind):
		return &unknownKindError{name: kind.String()}
	}
	return CheckAddressable(user, target)
}

// CheckAddressable refuses, with a *ValidationError, a user or target id
// "." or "..": the id form admits them, but a URL's path cannot carry them
// (browsers and the server resolve them as dot segments), so a stream of
// them could be written but never read or changed by path. Writes and
// imports check it; decoding a stored event does not, so a log written
// before this rule still reads.
func CheckAddressable(user UserID, target Target) error {
	if user.id == "." || user.id == ".." {
		return invalid("user", "%q is a dot segment that no URL path can carry", user.id)
	}
	if target.id == "." || target.id == ".." {
		return invalid("target_id", "%q is a dot segment that no URL path can carry", target.id)
	}
	return nil
}

// ValidateIdempotencyKey checks a key: empty (none) or 1..128 visible
// ASCII characters. It returns a *ValidationError.
func ValidateIdempotencyKey(k string) error {
	if len(k) > MaxIdempotencyKeyLen {
		return invalid("idempotency_key", "at most %d characters", MaxIdempotencyKeyLen)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return invalid("idempotency_key", "only visible ASCII characters are allowed")
		}
	}
	return nil
}

func (l *Ledger) try(ctx context.Context, req SetRequest, hash string) (Outcome, error) {
	if req.IdempotencyKey != "" {
		if rec, ok, err := l.store.Idempotency(ctx, req.User, req.IdempotencyKey); err != nil {
			return Outcome{}, err
		} else if ok {
			return matchRecord(rec, req, hash)
		}
	}
	stream := StreamID{User: req.User, Target: req.Target}
	cmd := Command{Stream: stream, Kind: req.Kind, On: req.On, Metadata: req.withKey(),
		OccurredAt: l.cfg.Now().UTC(), EventID: NewEventID()}
	var rec *IdempotencyRecord
	if req.IdempotencyKey != "" {
		rec = &IdempotencyRecord{User: req.User, Key: req.IdempotencyKey, RequestHash: hash}
	}
	out, err := DecideIn(ctx, l.store, DecideRequest{Command: cmd, ExpectedVersion: req.ExpectedVersion, Idempotency: rec})
	if err != nil {
		return Outcome{}, fmt.Errorf("set %s: %w", stream, err)
	}
	return out, nil
}

// Recorded returns the first outcome of the request req retries, and true,
// when req carries an idempotency key that is already recorded; it
// appends nothing. A recorded key of another request is
// ErrIdempotencyMismatch (with true), as Set answers it. Other errors are
// Set's validation errors and the store's.
func (l *Ledger) Recorded(ctx context.Context, req SetRequest) (Outcome, bool, error) {
	if req.IdempotencyKey == "" {
		return Outcome{}, false, nil
	}
	if err := l.validate(req); err != nil {
		return Outcome{}, false, err
	}
	rec, ok, err := l.store.Idempotency(ctx, req.User, req.IdempotencyKey)
	if err != nil || !ok {
		return Outcome{}, false, err
	}
	out, err := matchRecord(rec, req, req.hash())
	return out, true, err
}

func (l *Ledger) replay(ctx context.Context, req SetRequest, hash string) (Outcome, error) {
	rec, ok, err := l.store.Idempotency(ctx, req.User, req.IdempotencyKey)
	if err != nil {
		return Outcome{}, err
	}
	if !ok {
		return Outcome{}, fmt.Errorf("idempotency key vanished: %w", ErrVersionConflict)
	}
	return matchRecord(rec, req, hash)
}

// matchRecord returns rec's outcome when req is the request rec recorded
// (its fingerprint is hash, req.hash()), else an *IdempotencyMismatchError
// naming the fields that differ.
func matchRecord(rec IdempotencyRecord, req SetRequest, hash string) (Outcome, error) {
	if rec.RequestHash == hash {
		return rec.Outcome, nil
	}
	mismatch := &IdempotencyMismatchError{Key: rec.Key, Position: rec.Outcome.Position}
	if !strings.HasPrefix(rec.RequestHash, fingerprintPrefix) {
		// An older server's record: one hash of the whole request.
		if rec.RequestHash == req.wholeHash() {
			return rec.Outcome, nil
		}
		return Outcome{}, mismatch
	}
	stored := strings.Split(strings.TrimPrefix(rec.RequestHash, fingerprintPrefix), ".")
	for i, part := range strings.Split(strings.TrimPrefix(hash, fingerprintPrefix), ".") {
		if i >= len(stored) || stored[i] != part {
			mismatch.Fields = append(mismatch.Fields, fingerprintFields[i])
		}
	}
	return Outcome{}, mismatch
}

// withKey returns the metadata to store: the caller's, with the
// idempotency key and the request id added.
func (r SetRequest) withKey() Metadata {
	return r.Metadata.with([2]string{MetaIdempotencyKey, r.IdempotencyKey}, [2]string{MetaRequestID, r.RequestID})
}

// fingerprintPrefix starts a request's fingerprint (SetRequest.hash);
// a record without it holds an older server's wholeHash.
const fingerprintPrefix = "f1:"

// fingerprintFields names the fingerprint's parts, in their order.
var fingerprintFields = [...]string{"on", "target", "kind", "expected_version", "metadata"}

// hash identifies the request for idempotency: same key, same hash, or
// 422. It is fingerprintPrefix and a 48-bit hash of each field of
// fingerprintFields, dot-separated (67 bytes; the whole request's hash
// was 64), so that a mismatch can name the fields that differ without
// the record holding any of their values.
func (r SetRequest) hash() string {
	version := "-"
	if r.ExpectedVersion != nil {
		version = strconv.FormatInt(*r.ExpectedVersion, 10)
	}
	var meta strings.Builder
	for k, v := range r.Metadata.All() {
		fmt.Fprintf(&meta, "%q=%q\n", k, v)
	}
	parts := [len(fingerprintFields)]string{strconv.FormatBool(r.On), r.Target.String(), r.Kind.String(), version, meta.String()}
	b := make([]byte, 0, len(fingerprintPrefix)+len(parts)*13)
	b = append(b, fingerprintPrefix...)
	for i, p := range parts {
		if i > 0 {
			b = append(b, '.')
		}
		sum := sha256.Sum256([]byte(p))
		b = hex.AppendEncode(b, sum[:6])
	}
	return string(b)
}

// wholeHash is the fingerprint older servers recorded: one hash of the
// whole request, which says only whether it differs. Their records are
// still matched (a retry after an upgrade gets its first outcome) until
// they expire.
func (r SetRequest) wholeHash() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%t\n%s\n%s\n", r.On, r.Target, r.Kind)
	if r.ExpectedVersion != nil {
		fmt.Fprintf(&b, "v%d\n", *r.ExpectedVersion)
	}
	for k, v := range r.Metadata.All() {
		fmt.Fprintf(&b, "%q=%q\n", k, v)
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}
