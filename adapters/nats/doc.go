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
//     Nats-Msg-Id (the event id), Ledger-Position (its position) and
//     Ledger-Log (the log's LogID).
//   - Marshaler, the watermill-nats marshaler that writes those headers
//     and reads them back for consumers that use watermill.
//   - Metrics, the relay's Prometheus collectors.
//
// Exactly once into the stream. At the start of every session (and after
// every failure) the relay reads the stream's last message and resumes
// after its Ledger-Position, checking that it is of this log (its
// Ledger-Log, when it has one) and that the log holds that very event.
// Each publish carries Nats-Expected-Last-Sequence, the stream sequence of
// the message before it, so JetStream stores a message only directly after
// its predecessor: a publish whose acknowledgement was lost, a stale relay
// that woke up after losing its lock, or any other writer cannot leave a
// gap or a duplicate; the relay re-reads the stream and goes on. Nats-Msg-Id
// lets JetStream's duplicate window drop retries as well.
//
// A log replaced under the relay stops Run with domain.ErrLogReplaced: a
// PostgreSQL schema dropped and made anew, or a SQLite file deleted, moved
// or replaced at its path (the read-only store watches it). Its positions
// name other events. An older copy of the same log restored under the
// relay stops Run with ErrStreamMismatch, since it issues again positions
// the stream holds, with other events: the relay checks that the log still
// holds the last relayed event at its position before it publishes each
// batch it read, and every second, with the log's head (a head behind that
// position stops it too). None of the restored copy's events is published.
//
// A log moved away (ledger import log sealed it: logcopy.Sealed) stops Run
// with domain.ErrLogMoved, at its start and within a second while it runs:
// its new store, with the same LogID and positions, is the one to relay
// into the same stream, and a relay kept on the old log would hold the
// lock for ever.
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
