package projections

import (
	"time"

	"github.com/interactionledger/ledger/domain"
)

// TargetView is one target's counts and, when a viewer was given, that
// viewer's state. Counts and Viewer hold every configured kind.
type TargetView struct {
	Target   domain.Target
	Counts   map[string]int64
	Viewer   map[string]bool // nil when no viewer was asked for
	Position int64           // last applied event that touched the target; 0 if none
}

// Actor is one entry of "who did kind k to target t", newest first.
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
