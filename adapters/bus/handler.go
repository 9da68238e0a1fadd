package bus

import (
	"context"
	"log/slog"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

// maxBuffered bounds a handler's batch when a source never marks batch
// ends.
const maxBuffered = 10000

// ProjectionHandler returns a watermill handler that applies the events of
// its messages to projection name of set, one transaction per batch.
//
// Messages are buffered and acked until the one that ends a batch
// (MetaBatchLast), which applies the whole buffer with set.Apply and is
// acked only if that commits. Acking before applying is safe because the
// projection's checkpoint, not the ack, is the durable progress: if the
// batch fails, the Nack stops the subscription and a new one starts from
// the checkpoint, delivering the buffered events again. A failed apply is
// reported by the Set (Err, Status, log); a cancelled context is a
// shutdown and is not. Messages must arrive one at a time in position
// order, as Subscriber and an ordered broker deliver them.
func ProjectionHandler(set *projections.Set, name string) message.NoPublishHandlerFunc {
	a := &applier{set: set, name: name}
	return a.handle
}

type applier struct {
	set  *projections.Set
	name string
	mu   sync.Mutex
	buf  []domain.Event
}

func (a *applier) handle(msg *message.Message) error {
	e, err := messageEvent(msg)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.buf = nil
		return err
	}
	if n := len(a.buf); n > 0 && e.Position <= a.buf[n-1].Position {
		// A redelivery from an earlier position: what was buffered is
		// delivered again, so start over from here.
		a.buf = a.buf[:0]
	}
	a.buf = append(a.buf, e)
	if !endsBatch(msg) && len(a.buf) < maxBuffered {
		return nil
	}
	batch := a.buf
	a.buf = nil
	return a.set.Apply(msg.Context(), a.name, batch)
}

// HandlerName returns the router handler name of a projection.
func HandlerName(projection string) string { return "projection." + projection }

// AddProjections adds one consumer handler per projection of set to
// router, each with its own Subscriber tailing store from that
// projection's checkpoint. Run the router to start them; Close it to stop
// them. cfg.StartAfter is ignored. It returns a subscriber's config
// error.
func AddProjections(router *message.Router, store domain.EventStore, set *projections.Set, cfg SubscriberConfig, log *slog.Logger) error {
	for _, name := range set.Names() {
		c := cfg
		c.StartAfter = func(ctx context.Context) (int64, error) { return set.Checkpoint(ctx, name) }
		sub, err := NewSubscriber(store, c, log)
		if err != nil {
			return err
		}
		router.AddConsumerHandler(HandlerName(name), DefaultTopic, sub, ProjectionHandler(set, name))
	}
	return nil
}

// NewRouter returns a watermill router with no middleware (see the package
// doc for why) logging to log; a nil logger discards. The router's
// per-message trace and debug lines are dropped before they are built:
// formatting them cost more than applying the events.
func NewRouter(log *slog.Logger) (*message.Router, error) {
	var logger watermill.LoggerAdapter = watermill.NopLogger{}
	if log != nil {
		logger = quietLogger{watermill.NewSlogLogger(log)}
	}
	return message.NewRouter(message.RouterConfig{}, logger)
}

// quietLogger passes on errors and info lines only.
type quietLogger struct{ watermill.LoggerAdapter }

func (quietLogger) Debug(string, watermill.LogFields) {}
func (quietLogger) Trace(string, watermill.LogFields) {}
func (q quietLogger) With(f watermill.LogFields) watermill.LoggerAdapter {
	return quietLogger{q.LoggerAdapter.With(f)}
}
