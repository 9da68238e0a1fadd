package postgres

// Listening returns a channel closed once the store's listener first
// listens: tests wait for it instead of guessing how long connecting takes.
func (s *EventStore) Listening() <-chan struct{} { return s.listening }

// PopularStreams and PrefillPopularTarget set up the popular target of
// TestStreamLookupByWholeIdentity for BenchmarkAppendPopularTarget.
const PopularStreams = popularStreams

var PrefillPopularTarget = prefillPopularTarget
