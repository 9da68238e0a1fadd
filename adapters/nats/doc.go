// Package nats relays the event log into a NATS JetStream stream, so that
// other services (notifications, ranking, search, a warehouse) receive
// every like and collect from a durable broker.
//
// What lives here:
//
//   - Relay, which tails a domain.Tailable through the bus package's
//     Subscriber (the log is its own outbox) and publishes each event
//     through watermill-nats' JetStream publisher to the subject
//     <prefix>.<kind>.<target_type>, with the event's JSON (eventcodec,
//     the same bytes /v1/events serves) as payload and the headers
//     Nats-Msg-Id (the event id) and Ledger-Position (its position).
//   - Marshaler, the watermill-nats marshaler that writes those headers
//     and reads them back for consumers that use watermill.
//   - Metrics, the relay's Prometheus collectors.
//
// Exactly once into the stream. At the start of every session (and after
// every failure) the relay reads the stream's last message and resumes
// after its Ledger-Position, checking that the log holds that very event.
// Each publish carries Nats-Expected-Last-Sequence, the stream sequence of
// the message before it, so JetStream stores a message only directly after
// its predecessor: a publish whose acknowledgement was lost, a stale relay
// that woke up after losing its lock, or any other writer cannot leave a
// gap or a duplicate; the relay re-reads the stream and goes on. Nats-Msg-Id
// lets JetStream's duplicate window drop retries as well.
// A log replaced under the relay (domain.ErrLogReplaced: a PostgreSQL schema
// dropped and made anew) stops Run: its positions name other events. So
// does a head behind the last relayed position (an older copy of the log
// restored), which would issue positions the stream holds again.
//
// One relay at a time: a relay publishes only while it holds a key in a
// JetStream key-value bucket, created only if absent and refreshed well
// within the bucket's TTL. A second relay waits as a standby (logging that
// it waits) and takes over when the first stops (within a second) or dies (within
// the TTL).
//
// The relay depends only on the domain.Tailable port (ReadEvents after a
// position, LastPosition, Committed), so it runs over any store.
//
// What must not live here: storage, projections, HTTP. Wiring (flags,
// opening the store) is in cmd/ledger.
package nats
