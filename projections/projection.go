package projections

import (
	"context"
	"database/sql"
	"slices"

	"github.com/interactionledger/ledger/domain"
)

// The projection names.
const (
	Counts     = "counts"
	Viewer     = "viewer"
	Actors     = "actors"
	Collection = "collection"
)

// AllProjections lists every projection name in the order they are applied.
var AllProjections = []string{Counts, Viewer, Actors, Collection}

// projection is one read model. Implementations hold no state between
// calls; every method works inside the transaction it is given, on the
// tables named with suffix sfx ("" for the live tables, "__new" during a
// rebuild).
type projection interface {
	name() string
	// version is the schema version; a change rebuilds the projection.
	version() int64
	// tables lists the projection's table names (without suffix).
	tables() []string
	// create creates the tables with suffix sfx, without secondary indexes.
	create(ctx context.Context, tx *sql.Tx, sfx string) error
	// index creates the secondary indexes of the tables with suffix sfx;
	// gen makes the index names unique within the file.
	index(ctx context.Context, tx *sql.Tx, sfx string, gen int64) error
	// apply applies a batch (events after the checkpoint, position order).
	// The counts projection fills announce with the per-event counts when
	// it is not nil.
	apply(ctx context.Context, tx *sql.Tx, sfx string, b *batch, announce *[]AppliedEvent) error
}

func projectionByName(name string) (projection, bool) {
	switch name {
	case Counts:
		return countsProjection{}, true
	case Viewer:
		return viewerProjection{}, true
	case Actors:
		return actorsProjection{}, true
	case Collection:
		return collectionProjection{}, true
	}
	return nil, false
}

// ikey identifies one (user, target, kind) interaction.
type ikey struct {
	user, ttype, tid, kind string
}

// change is the net effect of a batch on one interaction: its state after
// the batch, and whether a row for it existed before the batch. Because the
// log only holds real toggles, a key's first event in the batch tells the
// state before it: a cancellation means it was on.
type change struct {
	key     ikey
	on      bool
	since   int64 // unix milliseconds of the turn-on, when on
	pos     int64 // position of the turn-on, when on
	existed bool
}

// ckey identifies one (target, kind) count.
type ckey struct {
	ttype, tid, kind string
}

// delta is the net effect of a batch on one count.
type delta struct {
	key ckey
	n   int64
	min int64 // lowest running sum within the batch (<= 0)
	pos int64 // last event of the batch for this key
}

// batch is a run of events folded into their net effect: per interaction
// its final state, per count its delta. Live batches keep their events
// (the counts projection replays them to announce each one); rebuild
// batches fold millions of events and keep only the net effect.
type batch struct {
	events  []domain.Event
	changes []change
	ci      map[ikey]int
	deltas  []delta
	di      map[ckey]int
	last    int64 // position of the last event added
	n       int   // events added
	// fresh says the tables are known to be empty (the first flush of a
	// build), so nothing needs to be read or deleted.
	fresh bool
}

// newBatch folds events and keeps them.
func newBatch(events []domain.Event) *batch {
	b := &batch{ci: make(map[ikey]int, len(events)), di: make(map[ckey]int)}
	for _, e := range events {
		b.add(e)
	}
	b.events = events
	return b
}

func newFold() *batch {
	return &batch{ci: make(map[ikey]int), di: make(map[ckey]int)}
}

// add folds one event into the batch.
func (b *batch) add(e domain.Event) {
	b.n++
	b.last = e.Position
	k := ikey{e.User.String(), e.Target.Type(), e.Target.ID(), e.Kind.String()}
	i, seen := b.ci[k]
	if !seen {
		i = len(b.changes)
		b.ci[k] = i
		b.changes = append(b.changes, change{key: k, existed: !e.On()})
	}
	c := &b.changes[i]
	c.on = e.On()
	if c.on {
		c.since, c.pos = e.OccurredAt.UnixMilli(), e.Position
	}
	d := ckey{k.ttype, k.tid, k.kind}
	j, seen := b.di[d]
	if !seen {
		j = len(b.deltas)
		b.di[d] = j
		b.deltas = append(b.deltas, delta{key: d})
	}
	dp := &b.deltas[j]
	if e.On() {
		dp.n++
	} else {
		dp.n--
	}
	dp.min = min(dp.min, dp.n)
	dp.pos = e.Position
}

// sortedChanges returns the changes sorted by cmpFn (a copy; each table
// wants its own primary-key order so inserts land near each other).
func (b *batch) sortedChanges(cmpFn func(a, b *change) int) []change {
	out := slices.Clone(b.changes)
	slices.SortFunc(out, func(x, y change) int { return cmpFn(&x, &y) })
	return out
}

func cmpKeys(vals ...int) int {
	for _, v := range vals {
		if v != 0 {
			return v
		}
	}
	return 0
}
