package projections

import (
	"context"
	"strings"

	"github.com/interactionledger/ledger/domain"
)

// MemoryPosition exposes the in-memory model's position and whether it
// answers reads, for the tests of package projections_test.
func MemoryPosition(s *Set) (int64, bool) { return s.mem.position() }

// RetryMemoryAtOnce lets a stale in-memory model reload on the next Apply
// instead of waiting a second after its last try.
func RetryMemoryAtOnce(s *Set) { s.mem.reloadEvery = 0 }

// SetCheckpointPages sets the WAL pages that wait for a checkpoint of the
// views files opened from now on, and returns what restores it.
func SetCheckpointPages(n int64) (restore func()) {
	old := checkpointPages
	checkpointPages = n
	return func() { checkpointPages = old }
}

// SetRebuildBacklog sets the backlog that Open's RebuildBehind rebuilds
// (at least min events and 1/share of the log), and returns what restores
// it.
func SetRebuildBacklog(min, share int64) (restore func()) {
	oldMin, oldShare := rebuildBacklogMin, rebuildBacklogShare
	rebuildBacklogMin, rebuildBacklogShare = min, share
	return func() { rebuildBacklogMin, rebuildBacklogShare = oldMin, oldShare }
}

// RecheckEvery is how long reads take a views file found unchanged as
// still unchanged.
const RecheckEvery = recheckEvery

// CollectionPlan is the query plan of a page of u's collection of kind k
// and type typ ("" for every type), one line per step.
func CollectionPlan(ctx context.Context, s *Set, u domain.UserID, k domain.Kind, typ string) (string, error) {
	q, args := collectionQuery(u, k, typ, 1<<62, DefaultLimit+1)
	rows, err := s.v.read.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			return "", err
		}
		plan = append(plan, detail)
	}
	return strings.Join(plan, "\n"), rows.Err()
}
