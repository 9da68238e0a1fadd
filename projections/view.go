package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/interactionledger/ledger/domain"
)

// TargetView is one target's counts and, when a viewer was given, that
// viewer's state. Counts and Viewer hold every configured kind; they may
// be shared with other answers (the memory model hands out one map per
// target state), so callers must not modify them.
type TargetView struct {
	Target   domain.Target
	Counts   map[string]int64
	Viewer   map[string]bool // nil when no viewer was asked for
	Position int64           // last applied event that touched the target; 0 if none
}

// Actor is one entry of "who did kind k to target t", newest first.
// Since, in Actor and Item, has millisecond precision: the precision of
// the events' wire form, so that a projection fed through the bus and one
// rebuilt from the store are equal.
type Actor struct {
	User     domain.UserID
	Since    time.Time // OccurredAt of the event that turned the kind on
	Position int64
}

// Item is one entry of "what user u did of kind k", newest first.
type Item struct {
	Target   domain.Target
	Since    time.Time
	Position int64
}

// Page is one page of a newest-first list. Next is empty on the last page.
type Page[T any] struct {
	Items []T
	Next  string
}

// AppliedEvent is an event as announced to OnApplied listeners once the
// counts projection has committed it: the event and its target's counts
// right after it (every configured kind), exact per event even when many
// events of the target were applied in one batch.
type AppliedEvent struct {
	Event  domain.Event
	Counts map[string]int64
}

// Progress reports how far a rebuild or build has come. Done and Total
// count events; Total is the log's last position when the run started (the
// log has no gaps on SQLite, so it is the number of events).
type Progress struct {
	Projection string // a projection name, or "all" when all are built together
	// Phase is "wait" (another rebuild of the views file holds its lock;
	// Done and Total 0), "read" (Done: the position reached), "latest" (reading
	// each interaction's last toggle; Done: how many so far, at most
	// Total), "write" (Done: the last position of the fold written),
	// "copy" (interaction tables copied from the one the folds wrote),
	// "index", "swap" or "done" (Done = Total).
	Phase string
	Done  int64
	Total int64
}

// Status is one projection's state, for metrics and readiness checks.
type Status struct {
	Projection string
	Version    int64 // schema version
	Applied    int64 // position applied, as known to this process
	Err        error // non-nil when the projection failed and stopped
}

// ErrUnreadable marks a query of the views file that failed (a damaged
// file, an I/O error): it matches domain.ErrUnavailable, a server answers
// it 503, and the error's Reason says what SQLite said.
var ErrUnreadable = fmt.Errorf("the views file cannot be read: %w", domain.ErrUnavailable)

// unreadable wraps a failed query of the views file (see ErrUnreadable);
// a context's end stays what it is.
func unreadable(op string, err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &readError{op: op, err: err}
}

type readError struct {
	op     string
	err    error
	reason string // when set, Reason's answer: the cause and its remedy are known
}

func (e *readError) Error() string   { return e.op + ": " + e.err.Error() }
func (e *readError) Unwrap() []error { return []error{ErrUnreadable, e.err} }

// Reason says in a few words what is wrong, for an HTTP answer.
func (e *readError) Reason() string {
	if e.reason != "" {
		return e.reason
	}
	return "the views file cannot be read (" + e.err.Error() + "); if it is damaged, ledger rebuild sets it aside and builds it again, and a restart takes the new one"
}
