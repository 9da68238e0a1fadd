package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/interactionledger/ledger/domain"
)

// ForwardConfig configures Forward.
type ForwardConfig struct {
	// Topic to publish to; default DefaultTopic.
	Topic string
	// StartAfter returns the position to start after; nil starts at the
	// beginning of the log. Consumers skip what they already applied, so
	// starting early is harmless; starting late loses events.
	StartAfter func(ctx context.Context) (int64, error)
	// PollInterval and BatchSize: see SubscriberConfig.
	PollInterval time.Duration
	BatchSize    int
}

// Forward tails store and publishes every event, in position order, to
// pub: one Publish call per read batch, with the batch marked as
// NewMessage does. It returns nil when ctx ends (a shutdown), and an error
// when StartAfter or a Publish fails; the caller restarts it from the
// consumers' checkpoints. With gochannel, configure
// BlockPublishUntilSubscriberAck and start Forward only once the
// consuming router is Running, or messages are lost or reordered.
func Forward(ctx context.Context, store domain.Tailable, pub message.Publisher, cfg ForwardConfig, log *slog.Logger) error {
	topic := cfg.Topic
	if topic == "" {
		topic = DefaultTopic
	}
	var after int64
	if cfg.StartAfter != nil {
		var err error
		if after, err = cfg.StartAfter(ctx); err != nil {
			return fmt.Errorf("forward: start position: %w", err)
		}
	}
	t := newTail(store, cfg.PollInterval, cfg.BatchSize, log)
	for {
		events, err := t.next(ctx, after)
		if err != nil {
			return nil // only ctx ends the tail
		}
		msgs := make([]*message.Message, 0, len(events))
		for i, e := range events {
			if e.Position > after { // not the event at after (see tail.next)
				msgs = append(msgs, NewMessage(e, i == len(events)-1))
			}
		}
		if err := pub.Publish(topic, msgs...); err != nil {
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return nil
			}
			return fmt.Errorf("forward: publish after %d: %w", after, err)
		}
		after = events[len(events)-1].Position
	}
}
