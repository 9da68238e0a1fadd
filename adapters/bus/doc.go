// Package bus carries committed events from the event store to the
// projections through watermill.
//
// What lives here:
//
//   - Subscriber, a watermill message.Subscriber that tails a
//     domain.Tailable in position order. It wakes on the store's Committed
//     signal and polls as a fallback, so events written by another process
//     (an import) are picked up. A store that keeps its latest commits in
//     memory (domain.RecentReader) hands them over without a query; the
//     log is then queried at the start, after each poll, and when that
//     memory does not reach back to the tail's position. Each read starts at
//     the event at the tail's position itself, which the projections'
//     batches carry so that they can check the log still holds the event
//     they applied last (a log restored from an older copy under a running
//     server reuses positions); every other consumer gets only the events
//     after it. It sends the next message only after the
//     previous one is acked, and stops the subscription on a Nack: a
//     projection must never skip an event, and its checkpoint, not the ack,
//     is the durable progress, so the restarted subscription resumes from
//     it.
//   - Forward, a relay that tails the store and publishes to any watermill
//     Publisher (gochannel in tests). The NATS JetStream relay (package
//     adapters/nats) uses the Subscriber instead, with EventOf, since it
//     publishes each event to a subject of its own.
//   - StartProjections, the running router a program serving reads keeps
//     beside its server (NewRouter and AddProjections, run until Close;
//     Stopped tells it the router stopped on its own).
//   - ProjectionHandler and AddProjections, which consume messages as a
//     watermill handler on a message.Router. AddProjections adds one
//     handler and one subscription (from the lowest checkpoint) that feeds
//     every projection: the log is read and decoded once per event, not
//     once per projection. Each projection still has its own
//     transaction and checkpoint and skips what it already has; a failing
//     projection holds the handler, and so all of them, loudly: the batch
//     is applied again after a wait doubling from 0.1 s to 5 s
//     (internal/backoff) until it applies, so no event is skipped and the
//     pipeline goes on without a restart once the cause is gone.
//
// Why a router rather than plain goroutines: it runs the ordered
// subscription, stops it on Close (the handler then sees a cancelled
// context, which is a shutdown, not a failure), and lets the same handler
// consume a broker's subscriber instead of the store tail without change.
// No retry, deduplicator or poison-queue middleware is installed on
// purpose: projections are idempotent by checkpoint, a skipped event
// would corrupt counts, and the handler's own wait-and-apply-again above
// is the only retry.
//
// Messages: UUID = event id; payload = eventcodec JSON; metadata
// MetaPosition (the position) and MetaBatchLast ("true" on the last message
// of each read batch, "false" on the others), so that a handler applies a
// batch in one transaction. The subscription AddProjections makes for its
// own handler sends one message per read batch instead, with the events in
// its context and no payload (UUID and MetaPosition of the batch's last
// event): one hand-off and one ack a batch, and no JSON nobody reads.
//
// What must not live here: projection logic (package projections) and
// storage (adapters/sqlite). This package only moves events.
package bus
