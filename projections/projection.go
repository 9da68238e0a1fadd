package projections

import (
	"context"
	"errors"
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
	create(ctx context.Context, tx querier, sfx string) error
	// index creates the secondary indexes of the tables with suffix sfx;
	// gen makes the index names unique within the file.
	index(ctx context.Context, tx querier, sfx string, gen int64) error
	// apply applies a batch (events after the checkpoint, position order).
	// The counts projection fills announce with the per-event counts when
	// it is not nil.
	apply(ctx context.Context, tx querier, sfx string, b *batch, announce *[]AppliedEvent) error
}

func projectionByName(name string) (projection, bool) {
	switch name {
	case Counts:
		return countsProjection{}, true
	case Viewer:
		return viewerTable, true
	case Actors:
		return actorsTable, true
	case Collection:
		return collectionTable, true
	}
	return nil, false
}

// ErrInconsistent means the read model disagrees with the log: a count
// would go negative, a cancelled interaction has no row, a turned-on one
// already has a row. The projection stops on it (see Set.Apply); a rebuild
// repairs a corrupted views file.
var ErrInconsistent = errors.New("read model disagrees with the log")
