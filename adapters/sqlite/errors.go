package sqlite

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mattn/go-sqlite3"

	"github.com/interactionledger/ledger/domain"
)

// translate turns driver errors that mean "the storage cannot serve this
// now" into domain.ErrUnavailable, keeping the driver's message. Other
// errors are returned as they are.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var done *storeError
	if errors.As(err, &done) {
		return err // translated already: its message would be repeated
	}
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code {
	case sqlite3.ErrFull:
		return unavailable("disk full", err)
	case sqlite3.ErrReadonly:
		return unavailable("database is read-only", err)
	case sqlite3.ErrIoErr:
		return unavailable("I/O error", err)
	case sqlite3.ErrCantOpen:
		return unavailable("cannot open database file", err)
	case sqlite3.ErrCorrupt, sqlite3.ErrNotADB:
		return unavailable("database file is corrupt", err)
	case sqlite3.ErrBusy, sqlite3.ErrLocked:
		return unavailable("database is locked by another connection", err)
	case sqlite3.ErrPerm, sqlite3.ErrAuth:
		return unavailable("permission denied", err)
	case sqlite3.ErrNomem:
		return unavailable("out of memory", err)
	case sqlite3.ErrConstraint:
		if msg := se.Error(); se.ExtendedCode == sqlite3.ErrConstraintTrigger && strings.HasPrefix(msg, movedPrefix) {
			// A sealed log's trigger (copyTx.Seal): its message says where the log went.
			return &storeError{msg: "sqlite: " + msg, cause: domain.ErrLogMoved, kind: domain.ErrLogMoved}
		}
	}
	return err
}

// IsLocked reports whether err is a store's failure to take the file's
// lock within its busy timeout (Config.BusyTimeout): another connection
// or process holds it, such as a server in a burst of writes. Waiting
// longer may get it.
func IsLocked(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked)
}

// movedPrefix begins the message of a sealed log's triggers
// (logcopy.Moved.Message).
const movedPrefix = "the log moved to "

func unavailable(what string, err error) error {
	return &storeError{msg: "sqlite: " + what, cause: err, kind: domain.ErrUnavailable}
}

// storeError matches both its domain sentinel and its driver cause.
type storeError struct {
	msg   string
	cause error
	kind  error
}

func (e *storeError) Error() string   { return e.msg + ": " + e.cause.Error() }
func (e *storeError) Unwrap() []error { return []error{e.kind, e.cause} }

// Reason says in a few words what is wrong with the storage ("disk full",
// "database is read-only"), without the driver's detail, so the HTTP
// adapter can tell clients why writes are refused.
func (e *storeError) Reason() string { return strings.TrimPrefix(e.msg, "sqlite: ") }

// isConstraint reports whether err is a constraint violation.
func isConstraint(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrConstraint
}

// constraint reports whether err is a UNIQUE or PRIMARY KEY violation whose
// message names column (e.g. "events.id").
func constraint(err error, column string) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) || se.Code != sqlite3.ErrConstraint {
		return false
	}
	switch se.ExtendedCode {
	case sqlite3.ErrConstraintUnique, sqlite3.ErrConstraintPrimaryKey:
		return strings.Contains(se.Error(), column)
	}
	return false
}

// appendError translates a failed statement of one append.
func appendError(stream domain.StreamID, err error) error {
	switch {
	case constraint(err, "events.id"):
		return fmt.Errorf("append %s: %w", stream, domain.ErrDuplicateEvent)
	case constraint(err, "events.stream_key"):
		return fmt.Errorf("append %s: %w", stream, domain.ErrVersionConflict)
	case constraint(err, "idempotency."):
		return fmt.Errorf("append %s: %w", stream, domain.ErrIdempotencyKeyTaken)
	}
	return fmt.Errorf("append %s: %w", stream, translate(err))
}
