package bus

import (
	"context"
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/interactionledger/ledger/adapters/eventcodec"
	"github.com/interactionledger/ledger/domain"
)

// Metadata keys of the messages this package produces.
const (
	// MetaPosition holds the event's global position in decimal.
	MetaPosition = "ledger_position"
	// MetaBatchLast is "true" on the last message of a read batch and
	// "false" on the others. A message without it is a batch of its own.
	MetaBatchLast = "ledger_batch_last"
)

// DefaultTopic is the topic Forward publishes to and AddProjections reads.
const DefaultTopic = "ledger.events"

// NewMessage returns the message carrying e; last marks the end of a batch.
func NewMessage(e domain.Event, last bool) *message.Message {
	msg := message.NewMessage(e.ID.String(), eventcodec.MarshalEvent(e))
	msg.Metadata.Set(MetaPosition, strconv.FormatInt(e.Position, 10))
	msg.Metadata.Set(MetaBatchLast, strconv.FormatBool(last))
	return msg
}

// batchKey is the context key under which an in-process Subscriber hands
// a whole read batch to its handler in one message.
type batchKey struct{}

// batchMessage returns the message of a whole read batch (events, in
// position order, not empty) for an in-process handler: the events are in
// its context, derived from ctx; it has no payload; its UUID is the last
// event's id and MetaPosition that event's position.
func batchMessage(ctx context.Context, events []domain.Event) *message.Message {
	last := events[len(events)-1]
	msg := message.NewMessage(last.ID.String(), nil)
	msg.Metadata.Set(MetaPosition, strconv.FormatInt(last.Position, 10))
	msg.Metadata.Set(MetaBatchLast, "true")
	msg.SetContext(context.WithValue(ctx, batchKey{}, events))
	return msg
}

// batchOf returns the events of a message made by batchMessage.
func batchOf(msg *message.Message) ([]domain.Event, bool) {
	events, ok := msg.Context().Value(batchKey{}).([]domain.Event)
	return events, ok && len(events) > 0
}

// DecodeMessage returns the event a message carries. It returns an error
// wrapping domain.ErrInvalidInput for a payload that is not an event or
// that disagrees with the message's UUID or position metadata.
func DecodeMessage(msg *message.Message) (domain.Event, error) {
	e, err := eventcodec.UnmarshalEvent(msg.Payload)
	if err != nil {
		return domain.Event{}, fmt.Errorf("message %s: %w", msg.UUID, err)
	}
	if msg.UUID != e.ID.String() {
		return domain.Event{}, fmt.Errorf("message %s carries event %s: %w", msg.UUID, e.ID, domain.ErrInvalidInput)
	}
	if p := msg.Metadata.Get(MetaPosition); p != "" && p != strconv.FormatInt(e.Position, 10) {
		return domain.Event{}, fmt.Errorf("message %s: position %s, event at %d: %w", msg.UUID, p, e.Position, domain.ErrInvalidInput)
	}
	return e, nil
}

// eventKey is the context key under which Subscriber hands the decoded
// event to in-process handlers alongside the payload.
type eventKey struct{}

// withEvent returns ctx carrying e.
func withEvent(ctx context.Context, e domain.Event) context.Context {
	return context.WithValue(ctx, eventKey{}, e)
}

// EventOf returns the event of msg: the one Subscriber put in the
// message's context when it is there and matches the message, otherwise
// the decoded payload (see DecodeMessage for its errors). Decoding JSON
// was most of the pipeline's cost, and an in-process subscriber has the
// event at hand.
func EventOf(msg *message.Message) (domain.Event, error) {
	if e, ok := msg.Context().Value(eventKey{}).(domain.Event); ok && e.ID.String() == msg.UUID {
		return e, nil
	}
	return DecodeMessage(msg)
}

// endsBatch reports whether msg closes a batch.
func endsBatch(msg *message.Message) bool {
	return msg.Metadata.Get(MetaBatchLast) != "false"
}
