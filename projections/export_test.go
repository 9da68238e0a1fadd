package projections

// MemoryPosition exposes the in-memory model's position and whether it
// answers reads, for the tests of package projections_test.
func MemoryPosition(s *Set) (int64, bool) { return s.mem.position() }

// RetryMemoryAtOnce lets a stale in-memory model reload on the next Apply
// instead of waiting a second after its last try.
func RetryMemoryAtOnce(s *Set) { s.mem.reloadEvery = 0 }
