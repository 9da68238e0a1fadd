package projections

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
