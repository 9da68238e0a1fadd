package domain

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Adapters wrap or translate their own errors into these so
// that callers can decide what to do with errors.Is.
var (
	// ErrInvalidInput marks input that is malformed or out of range.
	ErrInvalidInput = errors.New("invalid input")
	// ErrUnknownKind marks a well-formed kind that is not configured.
	ErrUnknownKind = errors.New("unknown kind")
	// ErrVersionConflict means the stream moved past the expected version.
	ErrVersionConflict = errors.New("stream version conflict")
	// ErrPreconditionFailed means a caller-supplied expected version
	// (SetRequest.ExpectedVersion) did not match the stream.
	ErrPreconditionFailed = errors.New("precondition failed")
	// ErrFollowedNotAppended means a command queued to follow another
	// (DecideRequest.Follows) was not decided because that one did not
	// append its event. It matches ErrPreconditionFailed.
	ErrFollowedNotAppended = fmt.Errorf("the command it follows did not append: %w", ErrPreconditionFailed)
	// ErrDuplicateEvent means an event with the same id is already stored.
	ErrDuplicateEvent = errors.New("duplicate event id")
	// ErrIdempotencyMismatch means an idempotency key was reused with a
	// different request.
	ErrIdempotencyMismatch = errors.New("idempotency key reused with a different request")
	// ErrIdempotencyKeyTaken is returned by a store when another append
	// recorded the same (user, key) first; the Ledger then reads that outcome.
	ErrIdempotencyKeyTaken = errors.New("idempotency key already recorded")
	// ErrUnavailable means the store cannot accept writes right now
	// (read-only file, full disk, I/O error); the request may be retried.
	ErrUnavailable = errors.New("store unavailable")
	// ErrClosed means the component was closed.
	ErrClosed = errors.New("closed")
	// ErrNotFound means a requested record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrLogReplaced means the store's log is no longer the one it opened
	// (a schema dropped and made anew under it): its positions now name
	// other events, so a reader that keeps positions must stop, not retry.
	ErrLogReplaced = errors.New("log replaced")
	// ErrLogMoved means the log was moved to another store (ledger import
	// log) and takes no more writes in this one; the error's message says
	// where it went. It matches ErrUnavailable.
	ErrLogMoved = fmt.Errorf("log moved (%w)", ErrUnavailable)
)

// StoredError is the error of a value a store read back from its log that
// does not decode, what naming it ("event 7: stored kind"): the log's
// fault, so it wraps ErrUnavailable and not err's *ValidationError, which
// matches ErrInvalidInput (a server's 400, a CLI's exit 2) as if the reader
// had sent the value. It is a *StoredValueError.
func StoredError(what string, err error) error {
	return &StoredValueError{What: what + ": " + err.Error()}
}

// StoredValueError is StoredError's: What names the value and why it does
// not decode. It matches ErrUnavailable.
type StoredValueError struct{ What string }

func (e *StoredValueError) Error() string { return e.What + ": " + ErrUnavailable.Error() }

// Unwrap is ErrUnavailable.
func (e *StoredValueError) Unwrap() error { return ErrUnavailable }

// ValidationError names the input field that was rejected and why. It
// matches ErrInvalidInput with errors.Is.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason)
}

// Is reports whether target is ErrInvalidInput.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidInput }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// StaleVersionError is the error of a command whose expected version is
// not its stream's: Stream as the store found it when it refused the
// command (Version, and LastPosition, its last event's position, 0 when
// empty), so that the caller can read that state (min_position) and try
// again at that version. It matches ErrPreconditionFailed.
type StaleVersionError struct {
	Expected int64
	Stream   Snapshot
}

func (e *StaleVersionError) Error() string {
	return fmt.Sprintf("at version %d, not %d: %v", e.Stream.Version, e.Expected, ErrPreconditionFailed)
}

// Unwrap is ErrPreconditionFailed.
func (e *StaleVersionError) Unwrap() error { return ErrPreconditionFailed }

// IdempotencyMismatchError is ErrIdempotencyMismatch with what differs: a
// key reused with another request. Fields names the request's fields that
// differ from the first request's, in the order on, target, kind,
// expected_version, metadata; nil when the first request's record does
// not say (recorded by an older server, which kept one hash of the whole
// request). Position is the first request's outcome position: its event's,
// or its stream's last event's when it changed nothing (0: none). It
// holds no value of either request.
type IdempotencyMismatchError struct {
	Key      string
	Fields   []string
	Position int64
}

func (e *IdempotencyMismatchError) Error() string {
	if len(e.Fields) == 0 {
		return fmt.Sprintf("key %q: %v", e.Key, ErrIdempotencyMismatch)
	}
	return fmt.Sprintf("key %q: %v: %s differ", e.Key, ErrIdempotencyMismatch, strings.Join(e.Fields, ", "))
}

// Unwrap is ErrIdempotencyMismatch.
func (e *IdempotencyMismatchError) Unwrap() error { return ErrIdempotencyMismatch }
