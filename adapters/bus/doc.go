// Package bus carries committed events from the event store to the
// projections through watermill.
//
// What lives here:
//
//   - Subscriber, a watermill message.Subscriber that tails a
//     domain.EventStore in position order. It wakes on the store's Committed
//     signal and polls as a fallback, so events written by another process
//     (an import) are picked up. It sends the next message only after the
//     previous one is acked, and stops the subscription on a Nack: a
//     projection must never skip an event, and its checkpoint, not the ack,
//     is the durable progress, so the restarted subscription resumes from
//     it.
//   - Forward, a relay that tails the store and publishes to any watermill
//     Publisher (gochannel in tests, NATS JetStream or Kafka later).
//   - ProjectionHandler and AddProjections, which consume messages as
//     watermill handlers on a message.Router, one handler and one
//     subscription per projection.
//
// Why a router with one consumer handler per projection, rather than plain
// goroutines: the router gives every projection its own ordered
// subscription, stops them together on Close (handlers then see a cancelled
// context, which is a shutdown, not a failure), and lets the same handlers
// consume a broker's subscriber instead of the store tail without change.
// No retry, deduplicator or poison-queue middleware is installed on
// purpose: projections are idempotent by checkpoint, and a skipped event
// would corrupt counts.
//
// Messages: UUID = event id; payload = eventcodec JSON; metadata
// MetaPosition (the position) and MetaBatchLast ("true" on the last message
// of each read batch, "false" on the others), so that a handler applies a
// batch in one transaction.
//
// What must not live here: projection logic (package projections) and
// storage (adapters/sqlite). This package only moves events.
package bus
